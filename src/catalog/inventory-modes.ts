/** 库存扣减模式, per activity. */
export const INVENTORY_MODES = ['on_order', 'on_add_to_cart', 'on_payment'] as const;
export type InventoryMode = (typeof INVENTORY_MODES)[number];
export const DEFAULT_INVENTORY_MODE: InventoryMode = 'on_order';
/** The modes checkout can serve. */
export const SUPPORTED_INVENTORY_MODES: readonly InventoryMode[] = ['on_order', 'on_add_to_cart', 'on_payment'];
