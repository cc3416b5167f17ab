"""The producer, split by job as aiokafka's producer package is:

api.py       Producer: connect, send / send_batch, flush, transactions' librdkafka calls
plan.py      checking a send before anything is produced (messages, topics, codec)
pump.py      RdProducer: one librdkafka producer, its reports served on the event loop
delivery.py  Delivery: one send's reports, resolved into its future; SendResult
"""

from klamm.client.producer.api import Producer
from klamm.client.producer.delivery import SendResult
from klamm.client.producer.plan import MessageInput

__all__ = ["MessageInput", "Producer", "SendResult"]
