/**
 * The job simulator, for tests: it lives in `@orchestra/core` as
 * `Simulation` (so `orchestra simulate` and users' own code can use it);
 * this module re-exports it under its old test path,
 * `@orchestra/core/testing/Simulation`, for the conformance suite and the
 * plugins' tests.
 *
 * @since 0.1.0
 */
import { Simulation } from "@orchestra/core"

export type AttemptContext = Simulation.AttemptContext
export type Churn = Simulation.Churn
export type LatencyModel = Simulation.LatencyModel
export type OutcomeModel = Simulation.OutcomeModel
export type Rng = Simulation.Rng
export type SimulationConfig = Simulation.SimulationConfig
export type SimulationResult = Simulation.SimulationResult
export type Summary = Simulation.Summary
export type TraceEvent = Simulation.TraceEvent

export const {
  always,
  byPlayer,
  deriveSeed,
  exponentialLatency,
  fixedLatency,
  hash32,
  makeRng,
  simulate,
  simulateMany,
  summarize,
  uniformLatency,
  weighted
} = Simulation
