import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createMetrics } from '@orders/metrics';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// Without Prometheus or any process: every query of the dashboards and every rule of alerts.yml
// against the metrics the api and workers register. The live test (scripts/test/dashboards-live)
// sees the same through a real scrape, but only where Prometheus is installed, and minutes later.

const root = fileURLToPath(new URL('../../../', import.meta.url));
const dashboardsDir = path.join(root, 'config/grafana/dashboards');

/**
 * Metrics on no panel, on purpose. orders_imported_total: the other order systems' volume, for
 * the business, not for an operator; it has no alert either.
 */
const OFF_THE_DASHBOARDS = new Set(['orders_imported_total']);

// ---- what the processes export, as Prometheus stores it ----

/** A series name as scraped: its labels, and whether rate() and increase() apply to it (counters, and histograms' _bucket/_sum/_count). */
interface Series {
  metric: string;
  labels: Set<string>;
  counts: boolean;
}

const prometheusConfig = parse(readFileSync(path.join(root, 'config/prometheus/prometheus.yml'), 'utf8')) as {
  scrape_configs: Array<{ relabel_configs?: Array<{ target_label: string }> }>;
};
/** What Prometheus adds to every series it scrapes (job, instance, the relabelled worker_stage), and what each registry adds (app). */
const targetLabels = ['job', 'instance', 'app', ...prometheusConfig.scrape_configs.flatMap((config) => (config.relabel_configs ?? []).map((relabel) => relabel.target_label))];

const registered = createMetrics({ app: 'test' })
  .registry.getMetricsAsArray()
  .map((metric) => ({ name: metric.name, kind: String(metric.type), labelNames: (metric as unknown as { labelNames: readonly string[] }).labelNames }));

const series = new Map<string, Series>();
for (const { name, kind, labelNames } of registered) {
  const labels = new Set([...labelNames, ...targetLabels]);
  if (kind === 'histogram') {
    series.set(`${name}_bucket`, { metric: name, labels: new Set([...labels, 'le']), counts: true });
    series.set(`${name}_sum`, { metric: name, labels, counts: true });
    series.set(`${name}_count`, { metric: name, labels, counts: true });
  } else {
    // no process registers a summary: one would fail as a gauge here, on its first rate()
    series.set(name, { metric: name, labels, counts: kind === 'counter' });
  }
}
// Prometheus's own, per target
series.set('up', { metric: 'up', labels: new Set(targetLabels), counts: false });
// how it hands its alerts to Alertmanager (ALERTS, the alerts themselves, below the rules)
series.set('prometheus_notifications_errors_total', { metric: 'prometheus_notifications_errors_total', labels: new Set([...targetLabels, 'alertmanager']), counts: true });
series.set('prometheus_notifications_alertmanagers_discovered', { metric: 'prometheus_notifications_alertmanagers_discovered', labels: new Set(targetLabels), counts: false });
// Alertmanager's, scraped by the alertmanager job
series.set('alertmanager_notifications_failed_total', { metric: 'alertmanager_notifications_failed_total', labels: new Set([...targetLabels, 'integration', 'reason']), counts: true });

// ---- what the dashboards and rules ask ----

interface Query {
  where: string;
  expr: string;
}
const panelQueries: Query[] = readdirSync(dashboardsDir)
  .filter((file) => file.endsWith('.json'))
  .flatMap((file) => {
    const dashboard = JSON.parse(readFileSync(path.join(dashboardsDir, file), 'utf8')) as { title: string; panels: Array<{ title: string; targets?: Array<{ expr?: string }> }> };
    return dashboard.panels.flatMap((panel) => (panel.targets ?? []).flatMap((target) => (target.expr ? [{ where: `${dashboard.title} / ${panel.title}`, expr: target.expr }] : [])));
  });
const rules = (parse(readFileSync(path.join(root, 'config/prometheus/alerts.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string; record?: string; expr: string; labels?: Record<string, string> }> }> }).groups.flatMap(
  (group) => group.rules,
);
const ruleQueries: Query[] = rules.map((rule) => ({ where: rule.alert ?? rule.record!, expr: rule.expr }));
// the alerts Prometheus evaluates, labelled by their rules' labels (and the expressions' own, which no panel reads)
series.set('ALERTS', { metric: 'ALERTS', labels: new Set(['alertname', 'alertstate', ...rules.flatMap((rule) => Object.keys(rule.labels ?? {}))]), counts: false });
/** A recording rule's series: its name is a metric, whose labels are its expression's. */
const recorded = new Set(rules.flatMap((rule) => rule.record ?? []));

// ---- a PromQL reader, as far as these queries go ----

type Node =
  | { kind: 'selector'; name: string; matched: string[]; range: boolean }
  | { kind: 'call'; fn: string; args: Node[] }
  | { kind: 'aggregate'; op: string; grouping: string[] | null; without: boolean; args: Node[] }
  | { kind: 'binary'; lhs: Node; rhs: Node; matching: string[] }
  | { kind: 'scalar' }
  | { kind: 'subquery'; expr: Node };

const AGGREGATIONS = new Set(['sum', 'min', 'max', 'avg', 'count', 'group', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values']);
const PRECEDENCE: Record<string, number> = { or: 1, and: 2, unless: 2, '==': 3, '!=': 3, '>': 3, '<': 3, '>=': 3, '<=': 3, '+': 4, '-': 4, '*': 5, '/': 5, '%': 5, '^': 6 };
const TOKEN = /\s+|(\[[^\]]*\])|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(\d+(?:\.\d+)?)|([a-zA-Z_:][a-zA-Z0-9_:]*)|(==|!=|>=|<=|=~|!~|[-+*/%^<>(){},=])/gy;

function tokenize(expr: string): string[] {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < expr.length) {
    const at = TOKEN.lastIndex;
    const match = TOKEN.exec(expr);
    if (!match) throw new Error(`cannot read ${JSON.stringify(expr.slice(at, at + 20))}`);
    const token = match.slice(1).find((group) => group !== undefined);
    if (token !== undefined) tokens.push(token);
  }
  return tokens;
}

function parsePromql(expr: string): Node {
  // Grafana's variables stand for durations
  const tokens = tokenize(expr.replace(/\$__\w+/g, '1m'));
  let at = 0;
  const peek = () => tokens[at];
  const next = () => tokens[at++]!;
  const take = (token: string) => {
    if (next() !== token) throw new Error(`expected ${token} at token ${at} of ${expr}`);
  };
  const labelList = (): string[] => {
    take('(');
    const labels: string[] = [];
    while (peek() !== ')') {
      labels.push(next());
      if (peek() === ',') next();
    }
    next();
    return labels;
  };
  const args = (): Node[] => {
    take('(');
    const list: Node[] = [];
    while (peek() !== ')') {
      list.push(binary(0));
      if (peek() === ',') next();
    }
    next();
    return list;
  };
  const postfix = (node: Node): Node => {
    for (;;) {
      const token = peek();
      if (token?.startsWith('[')) {
        next();
        if (token.includes(':')) node = { kind: 'subquery', expr: node };
        else if (node.kind === 'selector') node = { ...node, range: true };
        else throw new Error(`a range of something not a selector in ${expr}`);
      } else return node;
    }
  };
  const primary = (): Node => {
    const token = next();
    if (token === '(') {
      const inner = binary(0);
      take(')');
      return postfix(inner);
    }
    if (/^\d/.test(token) || /^["']/.test(token)) return { kind: 'scalar' };
    if (AGGREGATIONS.has(token) && (peek() === '(' || peek() === 'by' || peek() === 'without')) {
      let grouping: string[] | null = null;
      let without = false;
      if (peek() === 'by' || peek() === 'without') {
        without = next() === 'without';
        grouping = labelList();
      }
      return postfix({ kind: 'aggregate', op: token, grouping, without, args: args() });
    }
    if (peek() === '(') return postfix({ kind: 'call', fn: token, args: args() });
    const matched: string[] = [];
    if (peek() === '{') {
      next();
      while (peek() !== '}') {
        matched.push(next());
        next();
        next();
        if (peek() === ',') next();
      }
      next();
    }
    return postfix({ kind: 'selector', name: token, matched, range: false });
  };
  const binary = (minimum: number): Node => {
    let lhs = primary();
    for (;;) {
      const op = peek();
      const precedence = op === undefined ? undefined : PRECEDENCE[op];
      if (precedence === undefined || precedence < minimum) return lhs;
      next();
      const matching: string[] = [];
      if (peek() === 'bool') next();
      if (peek() === 'on' || peek() === 'ignoring') {
        next();
        matching.push(...labelList());
      }
      if (peek() === 'group_left' || peek() === 'group_right') {
        next();
        if (peek() === '(') matching.push(...labelList());
      }
      // ^ binds to the right, the others to the left
      const rhs = binary(op === '^' ? precedence : precedence + 1);
      lhs = { kind: 'binary', lhs, rhs, matching };
    }
  };
  const node = binary(0);
  if (at !== tokens.length) throw new Error(`unread tokens from ${tokens[at]} in ${expr}`);
  return node;
}

/** The labels an expression's result may carry (null: any, a recorded series'), and what is wrong in how it reads series. */
function check(node: Node, problems: string[]): Set<string> | null {
  const needs = (labels: string[], available: Set<string> | null, what: string) => {
    for (const label of labels) if (available && !available.has(label)) problems.push(`${what}: no label ${label}`);
  };
  switch (node.kind) {
    case 'scalar':
      return new Set();
    case 'subquery':
      return check(node.expr, problems);
    case 'selector': {
      if (recorded.has(node.name)) return null;
      const found = series.get(node.name);
      if (!found) {
        problems.push(`${node.name}: no such metric`);
        return null;
      }
      needs(node.matched, found.labels, node.name);
      return found.labels;
    }
    case 'call': {
      const labels = node.args.map((arg) => check(arg, problems));
      if (['rate', 'increase', 'irate'].includes(node.fn)) {
        const [arg] = node.args;
        if (arg?.kind !== 'selector' || !arg.range) problems.push(`${node.fn}() of something not a range of a metric`);
        else if (!recorded.has(arg.name) && series.get(arg.name)?.counts === false) problems.push(`${node.fn}(${arg.name}): not a counter nor a histogram's series`);
      }
      if (node.fn === 'histogram_quantile') {
        needs(['le'], labels[1] ?? null, 'histogram_quantile');
        return labels[1] ? new Set([...labels[1]].filter((label) => label !== 'le')) : null;
      }
      if (['time', 'vector', 'scalar'].includes(node.fn)) return new Set();
      if (node.fn === 'absent') return null;
      return labels.find((set) => set === null || set.size > 0) ?? new Set();
    }
    case 'aggregate': {
      const inner = node.args.map((arg) => check(arg, problems)).at(-1) ?? null;
      if (!node.grouping) return new Set();
      needs(node.grouping, inner, `${node.op} ${node.without ? 'without' : 'by'}`);
      if (!node.without) return new Set(node.grouping);
      return inner && new Set([...inner].filter((label) => !node.grouping!.includes(label)));
    }
    case 'binary': {
      const lhs = check(node.lhs, problems);
      const rhs = check(node.rhs, problems);
      const either = lhs && rhs && new Set([...lhs, ...rhs]);
      needs(node.matching, either, 'on/ignoring/group_left');
      return either;
    }
  }
}

function problemsOf(expr: string): string[] {
  const problems: string[] = [];
  check(parsePromql(expr), problems);
  return problems;
}

function metricsReadBy(node: Node): string[] {
  switch (node.kind) {
    case 'selector':
      return [series.get(node.name)?.metric ?? node.name];
    case 'call':
    case 'aggregate':
      return node.args.flatMap(metricsReadBy);
    case 'binary':
      return [...metricsReadBy(node.lhs), ...metricsReadBy(node.rhs)];
    case 'subquery':
      return metricsReadBy(node.expr);
    case 'scalar':
      return [];
  }
}

describe('dashboards and alert rules against the metrics the processes register', () => {
  it('finds a metric nobody exports, a label it lacks, and a rate of a gauge', () => {
    expect(problemsOf('sum by (queue) (rate(job_wait_seconds_bucket{app="worker"}[$__rate_interval]))')).toEqual([]);
    expect(problemsOf('max(order_waiting_for_mysql)')).toEqual(['order_waiting_for_mysql: no such metric']);
    expect(problemsOf('max by (sku) (queue_jobs{state="waiting"})')).toEqual(['max by: no label sku']);
    expect(problemsOf('sum(rate(queue_jobs[1m]))')).toEqual(['rate(queue_jobs): not a counter nor a histogram\'s series']);
    expect(problemsOf('histogram_quantile(0.95, sum by (queue) (rate(job_wait_seconds_bucket[1m])))')).toEqual(['histogram_quantile: no label le']);
  });

  it.each(panelQueries)('$where reads series that exist, by labels they carry: $expr', ({ expr }) => {
    expect(problemsOf(expr)).toEqual([]);
  });

  it.each(ruleQueries)('rule $where reads series that exist, by labels they carry', ({ expr }) => {
    expect(problemsOf(expr)).toEqual([]);
  });

  it('puts every metric the processes export on a panel, but the defaults of every Node process and those left off on purpose', () => {
    const shown = new Set(panelQueries.flatMap(({ expr }) => metricsReadBy(parsePromql(expr))));
    const ours = registered.map((metric) => metric.name).filter((name) => !/^(process|nodejs)_/.test(name) && !OFF_THE_DASHBOARDS.has(name));
    expect(ours.filter((name) => !shown.has(name))).toEqual([]);
    // and the list of those left off stays true
    for (const name of OFF_THE_DASHBOARDS) expect(registered.map((metric) => metric.name)).toContain(name);
  });
});
