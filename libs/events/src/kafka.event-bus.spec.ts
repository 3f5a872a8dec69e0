import { Partitioners, type PartitionerArgs, type PartitionMetadata } from 'kafkajs';
import { keyCachingPartitioner } from './kafka.event-bus';

function metadata(count: number): PartitionMetadata[] {
  return Array.from({ length: count }, (_, partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));
}

function args(key: string, partitions: number, partition?: number): PartitionerArgs {
  return { topic: 'registry.events', partitionMetadata: metadata(partitions), message: { key, value: '{}', partition } };
}

describe('keyCachingPartitioner', () => {
  const keys = Array.from({ length: 500 }, (_, i) => `team-${i % 37}/app-${i}`);

  it("picks the default partitioner's partition for every key, asked once or many times", () => {
    const reference = Partitioners.DefaultPartitioner();
    const cached = keyCachingPartitioner(Partitioners.DefaultPartitioner)();
    for (let round = 0; round < 3; round++) for (const key of keys) expect(cached(args(key, 6))).toBe(reference(args(key, 6)));
    // The keys spread: a cache that answered one partition for all would fail here.
    expect(new Set(keys.map((key) => cached(args(key, 6)))).size).toBe(6);
  });

  it('hashes again when the topic gains partitions, and keeps a partition the record names', () => {
    const reference = Partitioners.DefaultPartitioner();
    const cached = keyCachingPartitioner(Partitioners.DefaultPartitioner)();
    for (const key of keys) cached(args(key, 6));
    const moved = keys.filter((key) => reference(args(key, 6)) !== reference(args(key, 12)));
    expect(moved.length).toBeGreaterThan(0);
    for (const key of keys) expect(cached(args(key, 12))).toBe(reference(args(key, 12)));
    expect(cached(args(keys[0], 12, 11))).toBe(11);
  });
});
