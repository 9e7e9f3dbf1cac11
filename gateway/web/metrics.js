// The figures the dashboard reads from a gateway's /metrics (Prometheus text format).

// One sample: {name, labels: {...}, value}.
export function parse(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[2] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2];
    }
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

function sum(samples, name) {
  return samples.filter((s) => s.name === name).reduce((total, s) => total + s.value, 0);
}

// What one scrape says: executed transactions, blocks and their transactions, and the
// commit latency histogram as [upper bound in seconds, cumulative count] pairs.
export function figures(samples) {
  const buckets = samples
    .filter((s) => s.name === "stadsmunt_commit_latency_seconds_bucket")
    .map((s) => [s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), s.value])
    .sort((a, b) => a[0] - b[0]);
  return {
    transactions: sum(samples, "stadsmunt_transactions_total"),
    blocks: sum(samples, "stadsmunt_batch_size_count"),
    blockTransactions: sum(samples, "stadsmunt_batch_size_sum"),
    buckets,
  };
}

// The later histogram minus the earlier one, bucket by bucket; null after a restart.
export function bucketDelta(later, earlier) {
  if (later.length !== earlier.length) return null;
  const delta = later.map(([le, count], i) => [le, count - earlier[i][1]]);
  return delta.some(([, count]) => count < 0) ? null : delta;
}

// The q-quantile of a cumulative histogram, interpolated within its bucket as
// Prometheus's histogram_quantile does; null when it holds nothing.
export function quantile(q, buckets) {
  const total = buckets.length ? buckets[buckets.length - 1][1] : 0;
  if (!total) return null;
  const rank = q * total;
  let [lower, below] = [0, 0];
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return lower;
      return lower + (le - lower) * ((rank - below) / Math.max(count - below, 1));
    }
    [lower, below] = [le, count];
  }
  return lower;
}
