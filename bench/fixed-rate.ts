/**
 * Open-loop load at a fixed rate, latency in microseconds.
 *
 * autocannon records latency in whole milliseconds, too coarse for a 0.5 ms target,
 * so the fixed-rate measurement uses this small generator. It is open-loop: requests
 * go out on schedule whatever is still outstanding, so a slow server cannot slow the
 * load down. Latency runs from the send to the end of the response; the timer's own
 * lateness is the generator's, not the server's, and is left out.
 *
 * Usage: node fixed-rate.js <url> <rate/s> <seconds> [header: value]...
 * Prints one JSON line: { sent, ok, errors, non2xx, p50Us, p90Us, p99Us, maxUs }.
 */
import * as http from 'http';

const [url, rateArg, secondsArg, ...headerArgs] = process.argv.slice(2);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
if (!url || !(rate > 0) || !(seconds > 0)) {
  process.stderr.write('usage: fixed-rate <url> <rate/s> <seconds> [header: value]...\n');
  process.exit(2);
}
const headers: Record<string, string> = {};
for (const h of headerArgs) {
  const i = h.indexOf(':');
  headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
}
const target = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const latenciesUs: number[] = [];
let sent = 0;
let done = 0;
let errors = 0;
let non2xx = 0;

function fire(): void {
  sent++;
  const sentNs = process.hrtime.bigint();
  const req = http.request({ host: target.hostname, port: target.port, path: target.pathname, headers, agent }, (res) => {
    res.resume();
    res.on('end', () => {
      latenciesUs.push(Number(process.hrtime.bigint() - sentNs) / 1000);
      if ((res.statusCode ?? 0) >= 300) non2xx++;
      done++;
    });
  });
  req.on('error', () => {
    errors++;
    done++;
  });
  req.end();
}

const total = Math.round(rate * seconds);
const intervalNs = BigInt(Math.round(1e9 / rate));
const startNs = process.hrtime.bigint();

function tick(): void {
  const now = process.hrtime.bigint();
  while (sent < total && startNs + BigInt(sent) * intervalNs <= now) fire();
  // A 1 ms timer, not setImmediate: a busy loop would steal the core the upstream runs on.
  if (sent < total) setTimeout(tick, 1);
  else finish();
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function finish(): void {
  if (done < sent) {
    setTimeout(finish, 10);
    return;
  }
  const sorted = latenciesUs.sort((a, b) => a - b);
  const round = (n: number) => Math.round(n);
  process.stdout.write(
    JSON.stringify({
      sent,
      ok: sorted.length - non2xx,
      errors,
      non2xx,
      p50Us: round(percentile(sorted, 50)),
      p90Us: round(percentile(sorted, 90)),
      p99Us: round(percentile(sorted, 99)),
      maxUs: round(sorted[sorted.length - 1] ?? NaN),
    }) + '\n',
  );
  agent.destroy();
}

tick();
