// Zero-listener cost: 64 calls in flight of findUserById on :memory:, JS-thread CPU per call.
const fs = require('fs')
// node bench/observe-cost.cjs [package dir, default: this checkout] [none | query]
const { createAdapter } = require(process.argv[2] || require('path').resolve(__dirname, '..'))
const mode = process.argv[3] || 'none'
const threadCpuNs = () => Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0])
async function main() {
  const opts = mode === 'query' ? { log: [{ emit: 'event', level: 'query' }] } : undefined
  const a = createAdapter(':memory:', opts)
  if (mode === 'query') a.$on('query', () => {})
  await a.connect()
  const N = 150000
  let started = 0
  const worker = async () => { while (started < N) { started++; await a.findUserById('x') } }
  await Promise.all(Array.from({ length: 64 }, worker)) // warm-up
  started = 0
  const c0 = threadCpuNs(), t0 = process.hrtime.bigint()
  await Promise.all(Array.from({ length: 64 }, worker))
  const c1 = threadCpuNs(), t1 = process.hrtime.bigint()
  console.log(JSON.stringify({ mode, opsPerSec: Math.round(N / (Number(t1 - t0) / 1e9)), jsCpuUs: +((c1 - c0) / 1000 / N).toFixed(2) }))
  await a.close()
}
main()
