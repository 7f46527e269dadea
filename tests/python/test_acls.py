"""ACLs with real clients on a node with an authorizer: confluent-kafka's AdminClient creates
and describes ACLs, kafka-python's KafkaAdminClient describes and deletes them, and a consumer
logged in as another user is refused (topic or group authorization) until a prefixed READ on
its topics and a READ on its group let it read, and again once they are deleted. The admin, a
super user, is never refused.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation,
                                   AclPermissionType, AdminClient, NewTopic,
                                   ResourcePatternType, ResourceType, ScramCredentialInfo,
                                   ScramMechanism, UserScramCredentialUpsertion)
from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                         KafkaAdminClient, ResourcePatternFilter)
from kafka.admin import ResourceType as KpResourceType

from brookutil import authorized_node, produce_and_read_back

ADMIN, ADMIN_PASSWORD = "admin", "admin-secret"
READER, READER_PASSWORD = "reader", "reader-secret"
TIMEOUT = 30
DENIED = {KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED}

pytestmark = pytest.mark.brook_opts(**authorized_node(ADMIN, ADMIN_PASSWORD))


def sasl(broker, user: str, password: str) -> dict:
    return {"bootstrap.servers": broker.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "SCRAM-SHA-256", "sasl.username": user, "sasl.password": password}


def consume(config: dict, topic: str, count: int, timeout: float) -> tuple[list[bytes], set[int]]:
    """What a consumer of group `readers` reads from the start (committing nothing), and the
    error codes it saw, until `count` values or an authorization error or `timeout`."""
    consumer = Consumer({**config, "group.id": "readers", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "log_level": 0})
    consumer.subscribe([topic])
    values: list[bytes] = []
    errors: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(values) < count and not errors & DENIED and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error() is not None:
                errors.add(msg.error().code())
            else:
                values.append(msg.value())
    finally:
        consumer.close()
    return values, errors


def kafka_python_admin(broker) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, security_protocol="SASL_PLAINTEXT",
                            sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=ADMIN,
                            sasl_plain_password=ADMIN_PASSWORD, request_timeout_ms=TIMEOUT * 1000)


def test_acls_from_two_admin_clients_decide_what_a_consumer_reads(broker):
    admin = AdminClient(sasl(broker, ADMIN, ADMIN_PASSWORD))
    upsert = UserScramCredentialUpsertion(
        READER, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), READER_PASSWORD.encode())
    admin.alter_user_scram_credentials([upsert])[READER].result(TIMEOUT)
    admin.create_topics([NewTopic("acl-orders", 1, 1)])["acl-orders"].result(TIMEOUT)
    admin_config = sasl(broker, ADMIN, ADMIN_PASSWORD)
    assert len(produce_and_read_back(admin_config, "acl-orders", 3, TIMEOUT)) == 3
    reader = sasl(broker, READER, READER_PASSWORD)

    values, errors = consume(reader, "acl-orders", 3, TIMEOUT)
    assert values == [] and errors & DENIED, (values, errors)

    grants = [
        AclBinding(ResourceType.TOPIC, "acl-", ResourcePatternType.PREFIXED, f"User:{READER}",
                   "*", AclOperation.READ, AclPermissionType.ALLOW),
        AclBinding(ResourceType.GROUP, "readers", ResourcePatternType.LITERAL, f"User:{READER}",
                   "*", AclOperation.READ, AclPermissionType.ALLOW),
    ]
    for future in admin.create_acls(grants).values():
        future.result(TIMEOUT)
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                  AclOperation.ANY, AclPermissionType.ANY)
    assert sorted(map(str, admin.describe_acls(everything).result(TIMEOUT))) == \
        sorted(map(str, grants))

    kp = kafka_python_admin(broker)
    try:
        acls, error = kp.describe_acls(ACLFilter(
            principal=None, host=None, operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(KpResourceType.ANY, None,
                                                   ACLResourcePatternType.ANY)))
        assert error.errno == 0, error
        assert sorted((a.resource_pattern.resource_name, a.principal) for a in acls) == \
            [("acl-", f"User:{READER}"), ("readers", f"User:{READER}")]

        values, errors = consume(reader, "acl-orders", 3, TIMEOUT)
        assert values == [b"acl-orders-0", b"acl-orders-1", b"acl-orders-2"], (values, errors)

        deleted = kp.delete_acls([ACLFilter(
            principal=f"User:{READER}", host="*", operation=ACLOperation.READ,
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePatternFilter(KpResourceType.TOPIC, "acl-",
                                                   ACLResourcePatternType.PREFIXED))])
        (_, matches, error), = deleted
        assert error.errno == 0 and len(matches) == 1, deleted
    finally:
        kp.close()
    assert len(admin.describe_acls(everything).result(TIMEOUT)) == 1
    values, errors = consume(reader, "acl-orders", 3, TIMEOUT)
    assert values == [] and KafkaError.TOPIC_AUTHORIZATION_FAILED in errors, (values, errors)
    # The super user is not bound by ACLs.
    assert len(produce_and_read_back(admin_config, "acl-orders", 1, TIMEOUT)) == 1
