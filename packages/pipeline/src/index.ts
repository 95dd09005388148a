/**
 * @orchestra/pipeline — pipelines and schedules: pipeline documents (jobs,
 * needs, templates passing outputs to params) parsed and validated against
 * the catalog; a pure run state machine the conductor drives and replays;
 * dry-run plans from the policies' own decisions; simulated runs against
 * simulated players (no I/O, seeded); schedule documents (cron
 * in a time zone, overlap and missed-run policies) and the scheduler that
 * fires them.
 *
 * @since 0.1.0
 */
export * as Pipeline from "./Pipeline.js"
export * as Template from "./Template.js"
export * as PipelineRun from "./PipelineRun.js"
export * as Plan from "./Plan.js"
export * as Schedule from "./Schedule.js"
export * as ScheduleState from "./ScheduleState.js"
export * as Scheduler from "./Scheduler.js"
export * as PipelineSimulation from "./PipelineSimulation.js"
