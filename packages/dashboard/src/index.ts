/**
 * @orchestra/dashboard — the conductor's live dashboard: its static files
 * and the HTTP routes that serve them at `/` and `/dashboard/*`.
 *
 * @since 0.1.0
 */
export * as Dashboard from "./Dashboard.js"
