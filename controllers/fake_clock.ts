/**
 * A manual clock for unit tests of lanes and the controllers that use them: timers fire only
 * when the test advances time. Not used by the agent.
 *
 * @module
 */
import type { Clock, TimerId } from "./runner.ts";

/** A manual clock: timers fire only when the test advances time. */
export class FakeClock implements Clock {
  t = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  private next = 1;
  now() {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): TimerId {
    const id = this.next++;
    this.timers.set(id, { at: this.t + ms, fn });
    return id as unknown as TimerId;
  }
  clearTimeout(id: TimerId) {
    this.timers.delete(id as unknown as number);
  }
  async advance(ms: number) {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.timers].filter(([, v]) => v.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

/** Lets pending promise callbacks run. */
export const settle = () => new Promise((r) => setTimeout(r, 0));
