"""A minimal app-connect v1.1 Conduit written with paho-mqtt 1.x, the library app-connect uses.

It does what app-connect does on a Conduit (multitech-app-connect.md section 1): TLS 1.2 only,
a client certificate, client id lorawan/<app eui>/<gw uuid>, clean_session False, keepalive 60,
init and uplinks with QoS 1 and retain, subscription to lorawan/<gw uuid>/down with QoS 1.
It prints one JSON line per step on stdout and exits 0 after the first downlink (2 on timeout).
"""
import argparse
import json
import ssl
import sys
import threading

import paho.mqtt.client as mqtt

parser = argparse.ArgumentParser()
parser.add_argument("--host", default="localhost")
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--ca", required=True)
parser.add_argument("--cert", required=True)
parser.add_argument("--key", required=True)
parser.add_argument("--gw", required=True)
parser.add_argument("--deveui", required=True)
parser.add_argument("--timeout", type=float, default=20)
args = parser.parse_args()

APP = "ff-ff-ff-ff-ff-ff-ff-ff"
done = threading.Event()


def say(**fields):
    print(json.dumps(fields), flush=True)


def on_connect(client, userdata, flags, rc):
    say(event="connack", rc=rc, tls=client.socket().version())
    if rc != 0:
        done.set()
        return
    client.subscribe("lorawan/%s/down" % args.gw, qos=1)


def on_subscribe(client, userdata, mid, granted):
    say(event="subscribed", granted=list(granted))
    uplink = {
        "tmst": 174882291, "chan": 0, "rfch": 0, "freq": 921.4, "stat": 1, "modu": "LORA",
        "datr": "SF7BW125", "codr": "4/5", "lsnr": 9.5, "rssi": -47, "opts": "", "size": 2,
        "fcnt": 3, "cls": 0, "port": 5, "mhdr": "4049cd4601800300", "data": "q80=",
        "appeui": "6c-4e-ef-66-f4-79-86-a6", "deveui": args.deveui, "devaddr": "0146cd49",
        "ack": False, "adr": True, "gweui": "00-80-00-00-00-01-b5-fc", "seqn": 3,
        "time": "2023-09-13T16:52:25.469281Z",
    }
    topic = "lorawan/%s/%s/%s/up" % (args.gw, uplink["appeui"], args.deveui)
    client.publish(topic, json.dumps(uplink, separators=(",", ":")), qos=1, retain=True)
    say(event="uplink", topic=topic)


def on_message(client, userdata, msg):
    if msg.retain:
        # app-connect clears what it receives retained, before parsing (section 1).
        client.publish(msg.topic, None, qos=1, retain=True)
    try:
        payload = json.loads(msg.payload.decode("utf-8"))
    except ValueError:
        return
    say(event="downlink", topic=msg.topic, payload=payload, retain=bool(msg.retain), qos=msg.qos)
    done.set()


client = mqtt.Client(client_id="lorawan/%s/%s" % (APP, args.gw), clean_session=False)
client.tls_set(ca_certs=args.ca, certfile=args.cert, keyfile=args.key,
               cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLSv1_2)
client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.connect(args.host, args.port, keepalive=60)
init = {"gateways_euis": ["00-80-00-00-00-01-b5-fc"], "time": "2023-09-13T16:49:44.960920Z",
        "api_version": "1.1", "app_version": "1.0.6"}
client.publish("lorawan/%s/init" % args.gw, json.dumps(init), qos=1, retain=True)
client.loop_start()
ok = done.wait(args.timeout)
client.disconnect()
client.loop_stop()
sys.exit(0 if ok else 2)
