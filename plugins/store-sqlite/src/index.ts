/**
 * @orchestra/store-sqlite — the embedded SQLite store (WAL, group commit):
 * `storeSqlite()` is the plugin (`sqlite`), `StoreSqlite.layer(config)` the
 * core `Store` layer. The default export is the plugin factory.
 *
 * @since 0.1.0
 */
import { storeSqlite } from "./StoreSqlite.js"

export * as StoreSqlite from "./StoreSqlite.js"
export { layer, storeSqlite } from "./StoreSqlite.js"
export default storeSqlite
