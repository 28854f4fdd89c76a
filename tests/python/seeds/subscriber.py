# Source: /work/shared/seeds/001_9fe27590119590c9.txt, section "구독자 (subscriber.py)".
# Copied verbatim; only the indentation, lost in the document, is restored.
# tests/python/test_seeds.py runs it with "localhost:4222" replaced by the test server's address.
import asyncio
from nats.aio.client import Client as NATS
from nats.aio.errors import ErrConnectionClosed, ErrTimeout, ErrNoServers

async def message_handler(msg):
    """
    Callback function to handle received messages.
    """
    data = msg.data.decode()
    print(f"Received a message on '{msg.subject}': {data}")
    await msg.ack()  # Acknowledge the message

async def subscribe_to_subject(js, subject):
    """
    Subscribes to the specified subject and handles incoming messages.
    """
    try:
        # Subscribe to the subject without a queue group
        await js.subscribe(subject, cb=message_handler)
        print(f"Subscriber is listening on '{subject}'.")
    except Exception as e:
        print(f"Error subscribing to subject: {e}")

async def main():
    """
    Main coroutine that sets up the NATS client, connects to the server,
    and subscribes to a subject to receive messages.
    """
    nc = NATS()

    try:
        # Connect to the NATS server
        await nc.connect(servers=["nats://localhost:4222"])
        print("Subscriber connected to NATS server.")

        # Create JetStream context
        js = nc.jetstream()

        # Define the subject to subscribe to
        subject = "my.subject.*"

        # Subscribe to the subject
        await subscribe_to_subject(js, subject)

        # Keep the subscriber running to listen for incoming messages
        print("Subscriber is running. Press Ctrl+C to exit.")
        while True:
            await asyncio.sleep(1)

    except ErrNoServers as e:
        print(f"Could not connect to NATS server: {e}")
    except asyncio.CancelledError:
        pass  # Handle task cancellation gracefully
    except Exception as e:
        print(f"An error occurred: {e}")
    finally:
        # Close the NATS connection
        await nc.close()
        print("Subscriber disconnected from NATS server.")

if __name__ == '__main__':
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print("\nSubscriber stopped by user.")
