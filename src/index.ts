// The public entry point of supervised-sessions.
export { startSessionApp, SessionApp } from './app.ts';
export type { AppState, AppStatus, ChildName, ChildStatus, RestartEvent, SweepReport, SweepTrigger } from './app.ts';
export type { SessionAppConfig, Timestamp, Durability } from './config.ts';
export type { SessionStore, SessionPatch, SessionInfo, PutOptions, RevokeExcept } from './store/session-store.ts';
export type { JsonValue, SessionData } from './store/json-value.ts';
export { setupStore, clearStore, dropStore } from './admin.ts';
export { createHandler } from './http/create-handler.ts';
export type { SessionHandler } from './http/create-handler.ts';
export { Session } from './http/session.ts';
export type { HandlerOptions, CookieOptions } from './http/options.ts';
export {
  SessionError,
  ConfigError,
  TableExistsError,
  TableNotExistsError,
  StoreUnavailableError,
  SessionTooLargeError,
  AppStoppedError,
  SessionCommittedError,
  SessionHeadersSentError,
} from './errors.ts';
