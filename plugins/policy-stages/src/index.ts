/**
 * @orchestra/policy-stages — the `stages` scheduler policy: a job in
 * ordered stages, each a group of players run under a policy of its own
 * (composition through the policy registry), the next starting only when
 * the previous one's state allows it. The default export is the plugin
 * factory, so the package can be named directly in config.
 *
 * @since 0.1.0
 */
import { policyStages } from "./Stages.js"

export * as Stages from "./Stages.js"
export { policyStages }
export default policyStages
