/**
 * Alert lifecycle: findings in, alert events out (open → update/escalate → resolve → reopen),
 * with deterministic ids. Delivery channels live beside it and take `AlertEvent`s.
 */
export { createAlertManager } from './alert-manager.js';
export type { AlertManager, AlertManagerOptions } from './alert-manager.js';
export { alertId, transitionId } from './alert-ids.js';
