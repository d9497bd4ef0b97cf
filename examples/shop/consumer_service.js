// A shop service written with kafkajs: payment (charges each order) or email (confirms it).
// Its own consumer group, so it sees every order once.
//
//   BOOTSTRAP=localhost:9092 node consumer_service.js payment [expected orders] [idle seconds]
const { Kafka, logLevel } = require('kafkajs');

const service = process.argv[2] || 'payment';
const expect = Number(process.argv[3] || 0);
const idleMs = Number(process.argv[4] || 15) * 1000;

async function main() {
  const kafka = new Kafka({
    clientId: `shop-${service}`,
    brokers: (process.env.BOOTSTRAP || 'localhost:9092').split(','),
    logLevel: logLevel.ERROR,
  });
  const consumer = kafka.consumer({ groupId: `shop-${service}` });
  const seen = [];
  let last = Date.now();
  await consumer.connect();
  await consumer.subscribe({ topic: 'orders', fromBeginning: true });
  await consumer.run({
    // Commit after each order: a restart goes on after the last order handled.
    autoCommit: false,
    eachMessage: async ({ topic, partition, message }) => {
      const order = JSON.parse(message.value.toString());
      seen.push(order.order_id);
      last = Date.now();
      await consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
    },
  });
  while (Date.now() - last < idleMs && !(expect && seen.length >= expect)) {
    await new Promise((r) => setTimeout(r, 200));
  }
  await consumer.disconnect();
  seen.sort((a, b) => a - b);
  console.log(JSON.stringify({ service, group: `shop-${service}`, orders: seen.length, order_ids: seen }));
}

main().catch((e) => {
  console.error(`${service}: ${e}`);
  process.exit(1);
});
