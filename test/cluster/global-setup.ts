/** Brings the harness up for the cluster suite unless one is already up (then it is left running). */
import {down, isUp, runDir, up} from '../../scripts/cluster/cluster.js'

export default async function setup(): Promise<(() => void) | undefined> {
  if (isUp()) {
    console.log(`cluster suite: using the cluster already up in ${runDir()}`)
    return undefined
  }
  await up()
  return () => down()
}
