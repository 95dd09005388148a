/**
 * @orchestra/policy-all-of — the `all-of` scheduler policy: one task per
 * listed player, aggregated into `OK`, `PARTIAL_FAIL` or `FAIL`. The default
 * export is the plugin factory, so the package can be named directly in
 * config.
 *
 * @since 0.1.0
 */
import { policyAllOf } from "./AllOf.js"

export * as AllOf from "./AllOf.js"
export { policyAllOf }
export default policyAllOf
