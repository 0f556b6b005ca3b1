/** What a points journal row records: a grant, a freeze for an unpaid order and its end (deduct or unfreeze), a refund's return, points earned. */
export type Movement = 'grant' | 'freeze' | 'unfreeze' | 'deduct' | 'refund' | 'earn';
