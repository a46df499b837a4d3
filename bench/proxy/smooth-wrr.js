// Smooth weighted round robin (nginx's algorithm), for the reference proxies in the benchmark:
// each pick adds every weight to its running score, takes the highest, and subtracts the total.
export function smoothWeightedRoundRobin(upstreams) {
  const total = upstreams.reduce((a, u) => a + u.weight, 0)
  const scores = upstreams.map(() => 0)
  return function pick() {
    let best = 0
    for (let i = 0; i < upstreams.length; i++) {
      scores[i] += upstreams[i].weight
      if (scores[i] > scores[best]) best = i
    }
    scores[best] -= total
    return upstreams[best]
  }
}
