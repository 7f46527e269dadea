// kafkajs over brook's secured listeners, each a real node: SSL (the CA made here with openssl),
// SASL_SSL with SCRAM-SHA-512, and SASL_PLAINTEXT with PLAIN. On each, a producer writes and a
// consumer group reads everything back; a wrong password is refused on both SASL listeners.
//
//   node tests/js/security.test.js        (BROOK_BIN=/path/to/brook to pick the binary)

'use strict';

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const { Kafka, logLevel } = require('kafkajs');
const { Brook, log, waitFor, runTest } = require('./brook');

const TOTAL_TIMEOUT_MS = 180_000;
const USER = 'admin';
const PASSWORD = 'admin-secret';
const MESSAGES = 20;

function openssl(dir, ...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe', timeout: 60_000 });
}

// A CA and a certificate for 127.0.0.1 it signed, as brook's keystore (key then certificate).
function makeCertificates(dir) {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(dir, 'req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2',
    '-subj', '/CN=brook js test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  fs.writeFileSync(path.join(dir, 'server.ext'),
    'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n');
  openssl(dir, 'req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  openssl(dir, 'x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
    '-set_serial', '2', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext');
  const read = (f) => fs.readFileSync(path.join(dir, f), 'utf8');
  fs.writeFileSync(path.join(dir, 'keystore.pem'), read('server.key') + read('server.pem'));
  return { ca: read('ca.pem'), keystore: path.join(dir, 'keystore.pem') };
}

async function roundTrip(kafka, topic) {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const sent = Array.from({ length: MESSAGES }, (_, i) => `${topic}-${i}`);
  await producer.send({ topic, acks: -1, messages: sent.map((value) => ({ value })) });
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: `${topic}-group`, maxWaitTimeInMs: 200 });
  const got = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => { got.push(message.value.toString()); } });
  await waitFor(`${MESSAGES} messages on ${topic}`, () => got.length >= MESSAGES);
  await consumer.disconnect();
  assert.deepEqual(got, sent, `what ${topic} read back`);
}

async function refused(config) {
  const admin = new Kafka({ ...config, retry: { retries: 0 } }).admin();
  try {
    await admin.connect();
    await admin.listTopics();
  } catch (e) {
    return e.name;
  } finally {
    await admin.disconnect();
  }
  return null;
}

async function main() {
  const certs = new Brook(); // only for its directory
  const { ca, keystore } = makeCertificates(certs.dir);
  const ssl = { ca: [ca] };
  const base = { clientId: 'brook-js-security', logLevel: logLevel.NOTHING, retry: { retries: 10, initialRetryTime: 100 } };
  const listeners = [
    {
      name: 'SSL',
      settings: { 'listener.security.protocol.map': 'PLAINTEXT:SSL', 'ssl.keystore.location': keystore },
      client: { ssl },
    },
    {
      name: 'SASL_SSL with SCRAM-SHA-512',
      settings: { 'listener.security.protocol.map': 'PLAINTEXT:SASL_SSL', 'ssl.keystore.location': keystore },
      client: { ssl, sasl: { mechanism: 'scram-sha-512', username: USER, password: PASSWORD } },
    },
    {
      name: 'SASL_PLAINTEXT with PLAIN',
      settings: { 'listener.security.protocol.map': 'PLAINTEXT:SASL_PLAINTEXT', 'sasl.enabled.mechanisms': 'PLAIN' },
      client: { sasl: { mechanism: 'plain', username: USER, password: PASSWORD } },
    },
  ];
  for (const [i, listener] of listeners.entries()) {
    const brook = new Brook();
    const bootstrap = await brook.start({
      ...listener.settings,
      'brook.sasl.bootstrap.user': USER,
      'brook.sasl.bootstrap.password': PASSWORD,
      'connection.failed.authentication.delay.ms': 20,
      'group.initial.rebalance.delay.ms': 0,
    });
    const config = { ...base, brokers: [bootstrap], ...listener.client };
    await roundTrip(new Kafka(config), `js-secure-${i}`);
    if (listener.client.sasl) {
      // A new object: kafkajs stores its authenticator, bound to the password, on `sasl`.
      const { mechanism, username } = listener.client.sasl;
      const wrong = { ...config, sasl: { mechanism, username, password: 'wrong' } };
      assert.equal(await refused(wrong), 'KafkaJSSASLAuthenticationError', `${listener.name}: a wrong password`);
    }
    log(`PASS: kafkajs over ${listener.name}`);
    brook.stop();
    brook.clean();
  }
  certs.clean();
}

runTest('the kafkajs security test', TOTAL_TIMEOUT_MS, main);
