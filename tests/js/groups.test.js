// kafkajs against a real brook node: a consumer group of two consumers consumes everything a
// kafkajs producer wrote and commits it.
//
// Runs a brook node (see brook.js). Exits 0 when every check passed, 1 on a failed check or
// error, 2 when the whole run exceeds its time limit. The broker's stderr tail is printed on
// failure.
//
//   node tests/js/groups.test.js        (BROOK_BIN=/path/to/brook to pick the binary)

'use strict';

const assert = require('node:assert/strict');
// Every message names its partition explicitly; the default-partitioner notice is noise.
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const { Kafka, logLevel } = require('kafkajs');
const { Brook, log, waitFor, runTest } = require('./brook');

const TOTAL_TIMEOUT_MS = 120_000;
const TOPIC = 'js-groups';
const GROUP = 'js-group';
const PARTITIONS = 6;
const MESSAGES = 600;

async function main() {
  const brook = new Brook();
  const bootstrap = await brook.start({ 'group.initial.rebalance.delay.ms': 0, 'num.partitions': 1 });
  log(`brook ready on ${bootstrap}`);
  const kafka = new Kafka({
    clientId: 'brook-js-test',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    retry: { retries: 10, initialRetryTime: 100 },
  });

  const admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({
    topics: [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: 1 }],
    waitForLeaders: true,
  });
  assert.equal(created, true, 'createTopics reported that the topic already existed');

  // Two consumers in one group; every message they see is recorded with who saw it.
  const consumed = new Map(); // value -> [{ member, partition, offset }]
  const assignments = new Map(); // member -> partitions of its latest GROUP_JOIN
  const consumers = [];
  for (const member of ['c1', 'c2']) {
    const consumer = kafka.consumer({
      groupId: GROUP,
      sessionTimeout: 6000,
      heartbeatInterval: 500,
      rebalanceTimeout: 10000,
      maxWaitTimeInMs: 200,
    });
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      const parts = (e.payload.memberAssignment[TOPIC] || []).slice().sort((a, b) => a - b);
      assignments.set(member, parts);
      log(`${member} joined (leader ${e.payload.leaderId === e.payload.memberId}): partitions ${parts.join(',')}`);
    });
    consumer.on(consumer.events.CRASH, (e) => {
      log(`${member} crashed: ${e.payload.error && e.payload.error.stack}`);
    });
    await consumer.connect();
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
    await consumer.run({
      autoCommit: true,
      autoCommitInterval: 200,
      eachMessage: async ({ partition, message }) => {
        const value = message.value.toString();
        if (!consumed.has(value)) consumed.set(value, []);
        consumed.get(value).push({ member, partition, offset: Number(message.offset) });
      },
    });
    consumers.push(consumer);
  }

  // The group settles with both members, each owning a disjoint share of the partitions.
  await waitFor('both consumers to be assigned disjoint, complete partition sets', () => {
    if (assignments.size !== 2) return false;
    const all = [...assignments.values()].flat();
    return (
      all.length === PARTITIONS &&
      new Set(all).size === PARTITIONS &&
      [...assignments.values()].every((p) => p.length > 0)
    );
  });
  log('assignments', JSON.stringify(Object.fromEntries(assignments)));

  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false });
  await producer.connect();
  const produced = [];
  for (let i = 0; i < MESSAGES; i++) produced.push(`v-${i}`);
  const batch = 50;
  const endOffsets = new Map();
  for (let i = 0; i < MESSAGES; i += batch) {
    const records = await producer.send({
      topic: TOPIC,
      acks: -1,
      messages: produced.slice(i, i + batch).map((value, j) => ({
        key: `k-${i + j}`,
        value,
        partition: (i + j) % PARTITIONS,
      })),
    });
    for (const r of records) {
      assert.equal(r.errorCode, 0, `produce error ${JSON.stringify(r)}`);
    }
  }
  for (let i = 0; i < MESSAGES; i++) {
    const p = i % PARTITIONS;
    endOffsets.set(p, (endOffsets.get(p) || 0) + 1);
  }
  log(`produced ${MESSAGES} messages`);

  await waitFor(`all ${MESSAGES} messages to be consumed`, () => consumed.size === MESSAGES);
  const missing = produced.filter((v) => !consumed.has(v));
  assert.deepEqual(missing, [], 'messages produced but never consumed');
  const extra = [...consumed.keys()].filter((v) => !v.startsWith('v-'));
  assert.deepEqual(extra, [], 'consumed values that were never produced');
  const duplicates = [...consumed.entries()].filter(([, seen]) => seen.length > 1);
  assert.deepEqual(duplicates, [], 'messages consumed more than once in a stable group');
  // Each message came from the member that owned its partition.
  for (const [value, seen] of consumed) {
    for (const { member, partition } of seen) {
      assert.ok(
        assignments.get(member).includes(partition),
        `${value} (p${partition}) was consumed by ${member}, which owns ${assignments.get(member)}`,
      );
    }
  }

  // Topic high watermarks as the broker reports them match what was produced.
  const watermarks = await admin.fetchTopicOffsets(TOPIC);
  for (const { partition, high } of watermarks) {
    assert.equal(Number(high), endOffsets.get(partition), `high watermark of p${partition}`);
  }

  // The auto-commits reach the end offsets.
  const committed = await waitFor('committed offsets to reach the end offsets', async () => {
    const [t] = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
    const byPartition = new Map(t.partitions.map((p) => [p.partition, Number(p.offset)]));
    for (const [p, end] of endOffsets) {
      if (byPartition.get(p) !== end) {
        throw new Error(`committed ${JSON.stringify([...byPartition])}, want ${JSON.stringify([...endOffsets])}`);
      }
    }
    return byPartition;
  });
  log('committed', JSON.stringify([...committed]));

  const described = await admin.describeGroups([GROUP]);
  const group = described.groups[0];
  assert.equal(group.state, 'Stable', `group state ${group.state}`);
  assert.equal(group.members.length, 2, `group members ${JSON.stringify(group.members)}`);

  for (const c of consumers) await c.disconnect();
  await producer.disconnect();

  // Both members left (LeaveGroup): the group is empty but keeps its offsets.
  await waitFor('the group to be empty after both consumers left', async () => {
    const d = await admin.describeGroups([GROUP]);
    return d.groups[0].state === 'Empty' && d.groups[0].members.length === 0;
  });
  const [after] = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
  for (const p of after.partitions) {
    assert.equal(Number(p.offset), endOffsets.get(p.partition), `offset of p${p.partition} after leaving`);
  }
  await admin.disconnect();
  brook.stop();
  brook.clean();
  log('PASS: kafkajs consumer group consumed and committed everything');
}

runTest('the kafkajs group test', TOTAL_TIMEOUT_MS, main);
