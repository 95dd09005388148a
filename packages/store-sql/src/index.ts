/**
 * @orchestra/store-sql — Orchestra's job store written once over
 * `@effect/sql`, with group commit. Dialect plugins (`store-sqlite`,
 * `store-postgres`) are small: a `SqlClient` layer and a `SqlDialect`.
 *
 * @since 0.1.0
 */
export * as SqlDialect from "./SqlDialect.js"
export * as SqlStore from "./SqlStore.js"
