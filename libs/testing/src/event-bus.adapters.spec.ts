import { InProcessEventBus } from '@lading/events';
import { describeEventBus, testBusEvent } from './event-bus.suite';

describeEventBus('in-process', async () => {
  const bus = new InProcessEventBus();
  return { bus, cleanup: () => bus.close() };
});

describe('InProcessEventBus', () => {
  it('publishes to no one when nothing subscribed, and refuses to publish once closed', async () => {
    const bus = new InProcessEventBus();
    await bus.publish([testBusEvent('x/a', 1)]);
    await bus.close();
    expect(bus.health().state).toBe('down');
    await expect(bus.publish([testBusEvent('x/a', 2)])).rejects.toThrow(/closed/);
  });

  it('rejects a publish one subscription refused, after the others took the batch', async () => {
    const bus = new InProcessEventBus();
    const took: string[] = [];
    await bus.subscribe('ok', async (e) => void took.push(e.id));
    await bus.subscribe('refuses', async () => {
      throw new Error('full');
    });
    const e = testBusEvent('x/a', 1);
    await expect(bus.publish([e])).rejects.toThrow('full');
    expect(took).toEqual([e.id]);
  });
});
