/**
 * How lifecycle commands show a rollout: a status summary, and live progress while the engine
 * runs — in a terminal a redrawn line (step, weight bar, per-version rate, error rate, p99) plus
 * one line per decision; without a terminal one plain line per decision. NO_COLOR is honoured
 * (https://no-color.org).
 */
import {CHECKS, p99Ms, type CheckUnit} from '../rollout/core/analysis.js'
import {assertNever} from '../rollout/core/assert-never.js'
import type {AnalysisResult, DecisionLogEntry, Measurement} from '../rollout/core/types.js'
import type {WindowMetrics} from '../rollout/core/metrics.js'
import type {TickResult} from '../rollout/engine.js'
import type {RolloutStatus} from '../rollout/services.js'

/** Styling that switches itself off without a colour terminal. */
export interface Style {
  readonly bold: (text: string) => string
  readonly red: (text: string) => string
  readonly green: (text: string) => string
  readonly yellow: (text: string) => string
  readonly dim: (text: string) => string
}

/** Colours for `stream`, off without a TTY, with NO_COLOR or TERM=dumb. */
export function styleFor(stream: NodeJS.WriteStream): Style {
  const on = stream.isTTY === true && process.env.NO_COLOR === undefined && process.env.TERM !== 'dumb'
  const wrap = (open: number, close: number) => (text: string) => (on ? `\u001B[${open}m${text}\u001B[${close}m` : text)
  return {bold: wrap(1, 22), red: wrap(31, 39), green: wrap(32, 39), yellow: wrap(33, 39), dim: wrap(2, 22)}
}

/** A weight bar such as `[██████░░░░░░░░░░░░░░]`. */
export function weightBar(canaryWeight: number, total: number, width = 20): string {
  const filled = Math.round((canaryWeight / total) * width)
  return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}]`
}

function versionLine(name: string, metrics: WindowMetrics, version: 'stable' | 'canary'): string {
  const v = metrics[version]
  const seconds = Math.max(0.001, (metrics.untilMs - metrics.sinceMs) / 1000)
  const p99 = p99Ms(v)
  const errors = v.requests === 0 ? '–' : `${((v.errors / v.requests) * 100).toFixed(2)}%`
  return `${name} ${(v.requests / seconds).toFixed(1)} rps ${errors} err p99 ${p99 === null ? '–' : `${Math.round(p99)}ms`}`
}

function verdictText(style: Style, verdict: string): string {
  return verdict === 'Successful' ? style.green(verdict) : verdict === 'Failed' ? style.red(verdict) : style.yellow(verdict)
}

/** One decision as a plain line. */
export function decisionLine(entry: DecisionLogEntry, style: Style): string {
  const time = new Date(entry.atMs).toISOString().slice(11, 19)
  const text = entry.event === 'analysis' && entry.analysis !== undefined ? entry.message.replace(entry.analysis.verdict, verdictText(style, entry.analysis.verdict)) : entry.message
  return `${style.dim(time)} ${entry.phase.padEnd(11)} ${text}`
}

/** Live output for `run`, `start` and `step --wait`: call `onTick` with each engine tick, `end` at the end. */
export class ProgressPrinter {
  private readonly printed = new Set<string>()
  private liveShown = false
  private readonly style: Style
  private totalWeight = 100
  private stepCount = 1

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly enabled = true,
  ) {
    this.style = styleFor(stream)
  }

  /** The plan's shape, for "step k of n" and the weight bar. */
  setPlan(totalWeight: number, stepCount: number): void {
    this.totalWeight = totalWeight
    this.stepCount = stepCount
  }

  private get live(): boolean {
    return this.stream.isTTY === true
  }

  readonly onTick = (tick: TickResult): void => {
    if (!this.enabled) return
    this.clearLive()
    for (const entry of tick.state.decisions) {
      const key = `${entry.atMs}|${entry.event}|${entry.message}`
      if (this.printed.has(key)) continue
      this.printed.add(key)
      this.stream.write(`${decisionLine(entry, this.style)}\n`)
    }
    if (this.live) this.drawLive(tick)
  }

  private drawLive(tick: TickResult): void {
    const w = tick.observation.weights
    const metrics = tick.observation.metrics
    const canary = w === undefined ? 0 : Math.round((w.canary / w.total) * this.totalWeight)
    const step = `step ${Math.min(tick.state.stepIndex + 1, this.stepCount)}/${this.stepCount}`
    const traffic = metrics === undefined || 'error' in metrics ? '' : `  ${versionLine('stable', metrics, 'stable')} │ ${versionLine('canary', metrics, 'canary')}`
    const evidence = evidenceLine(tick.state.lastAnalysis)
    const line = `${this.style.bold(step)} ${weightBar(canary, this.totalWeight)} ${String(canary).padStart(3)}%${evidence === '' ? '' : `  ${evidence}`}${traffic}`
    this.stream.write(`\r\u001B[2K${line.slice(0, Math.max(40, (this.stream.columns ?? 160) + 40))}`)
    this.liveShown = true
  }

  private clearLive(): void {
    if (this.liveShown) this.stream.write('\r\u001B[2K')
    this.liveShown = false
  }

  end(): void {
    this.clearLive()
  }
}

function measurementLabel(m: Measurement): string {
  return m.check
}

function formatRatio(value: number | null | undefined): string {
  return value === null || value === undefined ? '–' : `${value.toFixed(2)}×`
}

function formatEvidence(value: number): string {
  return value >= 1000 ? value.toExponential(1) : value.toPrecision(3)
}

/** The comparisons with stable at the last look, short: `errors 1.06× (≤ 1.50×) pass 12.0/20.0 rollback 0.41/200`. */
export function evidenceLine(result: AnalysisResult | undefined): string {
  if (result === undefined) return ''
  const parts: string[] = []
  for (const m of result.measurements) {
    const comparison = CHECKS[m.check].comparison
    if (comparison === undefined || m.evidence === undefined) continue
    const name = comparison.name
    parts.push(`${name} ${formatRatio(m.ratio)} (≤ ${formatRatio(m.toleratedRatio)}) pass ${formatEvidence(m.evidence.pass)}/${formatEvidence(m.evidence.passNeeded)} rollback ${formatEvidence(m.evidence.rollback)}/${formatEvidence(m.evidence.rollbackNeeded)}`)
  }
  return parts.join(', ')
}

/** A measurement's value in its check's unit; percentages with `decimals`. */
function formatValue(value: number, unit: CheckUnit, decimals: number): string {
  switch (unit) {
    case 'ms':
      return `${Math.round(value)} ms`
    case 'count':
      return String(value)
    case 'percent':
      return `${value.toFixed(decimals)} %`
    default:
      return assertNever(unit)
  }
}

function formatMeasurement(m: Measurement, style: Style, labelWidth: number): string {
  const unit = CHECKS[m.check].unit
  const value = m.value === null ? '–' : formatValue(m.value, unit, m.value < 1 ? 3 : 2)
  const stable = m.stableValue === undefined || m.stableValue === null ? '' : ` (stable ${formatValue(m.stableValue, unit, 2)})`
  const threshold = m.threshold === undefined ? '' : ` threshold ${m.threshold}${m.boundMs === undefined || m.boundMs === null || unit !== 'ms' ? '' : ` (judged at the ${Math.round(m.boundMs)} ms bucket bound)`}`
  const comparison = m.evidence === undefined ? '' : ` ratio ${formatRatio(m.ratio)}${m.ratioInterval === undefined || m.ratioInterval === null ? '' : ` [${formatRatio(m.ratioInterval.lower)}, ${m.ratioInterval.upper === null ? '∞' : formatRatio(m.ratioInterval.upper)}]`} tolerated ${formatRatio(m.toleratedRatio)}, evidence pass ${formatEvidence(m.evidence.pass)}/${formatEvidence(m.evidence.passNeeded)} rollback ${formatEvidence(m.evidence.rollback)}/${formatEvidence(m.evidence.rollbackNeeded)}`
  return `  ${measurementLabel(m).padEnd(labelWidth)} ${value}${stable}${threshold}${comparison}  ${verdictText(style, m.verdict)}  ${style.dim(m.note)}`
}

/** The human form of `canary status`. */
export function formatStatus(status: RolloutStatus, style: Style, decisionsShown = 10): string {
  const lines = [
    `${style.bold(status.name)}: ${status.phase}${status.message === null ? '' : ` (${status.message})`}`,
    `  step ${status.step.index}/${status.step.count}: ${status.step.description}`,
    `  weight ${weightBar(status.canaryWeight ?? 0, status.totalWeight)} canary ${status.canaryWeight ?? '?'}/${status.totalWeight}${status.canaryWeight !== status.plannedWeight && !status.terminal ? ` (plan: ${status.plannedWeight})` : ''}`,
    `  stable ${status.stable.image}   canary ${status.canary.image}`,
  ]
  if (status.proxy.url !== null) lines.push(`  proxy  ${status.proxy.url}`)
  if (status.observed !== null) {
    const o = status.observed
    const share = (v: {sharePercent: number | null}) => (v.sharePercent === null ? '–' : `${v.sharePercent.toFixed(1)} %`)
    lines.push(`  observed since the weight was set: stable ${o.stable.requests} req (${share(o.stable)}), ${o.stable.errors} errors; canary ${o.canary.requests} req (${share(o.canary)}), ${o.canary.errors} errors`)
  }
  if (status.analysis !== null) {
    lines.push(`  analysis (look ${status.analysis.look}, ${new Date(status.analysis.atMs).toISOString().slice(11, 19)}): ${verdictText(style, status.analysis.verdict)}`)
    const labelWidth = Math.max(18, ...status.analysis.measurements.map((m) => measurementLabel(m).length))
    for (const m of status.analysis.measurements) lines.push(formatMeasurement(m, style, labelWidth))
  }
  if (status.decisions.length > 0 && decisionsShown > 0) {
    lines.push('  decisions:')
    for (const d of status.decisions.slice(-decisionsShown)) lines.push(`    ${decisionLine(d, style)}`)
  }
  return lines.join('\n')
}
