/**
 * @orchestra/store-memory — the in-memory store: `storeMemory()` is the
 * plugin (`memory`), `StoreMemory.layer` the core `Store` layer and
 * `StoreMemory.make` the service. The default export is the plugin factory.
 *
 * @since 0.1.0
 */
import { storeMemory } from "./StoreMemory.js"

export * as StoreMemory from "./StoreMemory.js"
export { layer, make, storeMemory } from "./StoreMemory.js"
export default storeMemory
