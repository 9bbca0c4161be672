from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PhoneType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PHONE_TYPE_UNSPECIFIED: _ClassVar[PhoneType]
    PHONE_TYPE_GENERIC_SIP: _ClassVar[PhoneType]
    PHONE_TYPE_MANAGED: _ClassVar[PhoneType]
    PHONE_TYPE_WEBRTC: _ClassVar[PhoneType]
    PHONE_TYPE_REMOTE_NUMBER: _ClassVar[PhoneType]

class LinkState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LINK_STATE_UNSPECIFIED: _ClassVar[LinkState]
    LINK_STATE_UP: _ClassVar[LinkState]
    LINK_STATE_DEGRADED: _ClassVar[LinkState]
PHONE_TYPE_UNSPECIFIED: PhoneType
PHONE_TYPE_GENERIC_SIP: PhoneType
PHONE_TYPE_MANAGED: PhoneType
PHONE_TYPE_WEBRTC: PhoneType
PHONE_TYPE_REMOTE_NUMBER: PhoneType
LINK_STATE_UNSPECIFIED: LinkState
LINK_STATE_UP: LinkState
LINK_STATE_DEGRADED: LinkState

class PairRequest(_message.Message):
    __slots__ = ("token", "csr_pem", "software_version")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    token: str
    csr_pem: bytes
    software_version: str
    def __init__(self, token: _Optional[str] = ..., csr_pem: _Optional[bytes] = ..., software_version: _Optional[str] = ...) -> None: ...

class PairResponse(_message.Message):
    __slots__ = ("edge_id", "org_id", "certificate_pem", "ca_chain_pem")
    EDGE_ID_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_CHAIN_PEM_FIELD_NUMBER: _ClassVar[int]
    edge_id: str
    org_id: str
    certificate_pem: bytes
    ca_chain_pem: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, edge_id: _Optional[str] = ..., org_id: _Optional[str] = ..., certificate_pem: _Optional[bytes] = ..., ca_chain_pem: _Optional[_Iterable[bytes]] = ...) -> None: ...

class WatchConfigRequest(_message.Message):
    __slots__ = ("from_version",)
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    from_version: int
    def __init__(self, from_version: _Optional[int] = ...) -> None: ...

class ConfigUpdate(_message.Message):
    __slots__ = ("version", "snapshot", "delta")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    version: int
    snapshot: ConfigSnapshot
    delta: ConfigDelta
    def __init__(self, version: _Optional[int] = ..., snapshot: _Optional[_Union[ConfigSnapshot, _Mapping]] = ..., delta: _Optional[_Union[ConfigDelta, _Mapping]] = ...) -> None: ...

class ConfigSnapshot(_message.Message):
    __slots__ = ("edge", "phones", "trunks", "dids", "number_plans", "outbound_routes")
    EDGE_FIELD_NUMBER: _ClassVar[int]
    PHONES_FIELD_NUMBER: _ClassVar[int]
    TRUNKS_FIELD_NUMBER: _ClassVar[int]
    DIDS_FIELD_NUMBER: _ClassVar[int]
    NUMBER_PLANS_FIELD_NUMBER: _ClassVar[int]
    OUTBOUND_ROUTES_FIELD_NUMBER: _ClassVar[int]
    edge: EdgeSettings
    phones: _containers.RepeatedCompositeFieldContainer[Phone]
    trunks: _containers.RepeatedCompositeFieldContainer[Trunk]
    dids: _containers.RepeatedCompositeFieldContainer[Did]
    number_plans: _containers.RepeatedCompositeFieldContainer[NumberPlan]
    outbound_routes: _containers.RepeatedCompositeFieldContainer[OutboundRoute]
    def __init__(self, edge: _Optional[_Union[EdgeSettings, _Mapping]] = ..., phones: _Optional[_Iterable[_Union[Phone, _Mapping]]] = ..., trunks: _Optional[_Iterable[_Union[Trunk, _Mapping]]] = ..., dids: _Optional[_Iterable[_Union[Did, _Mapping]]] = ..., number_plans: _Optional[_Iterable[_Union[NumberPlan, _Mapping]]] = ..., outbound_routes: _Optional[_Iterable[_Union[OutboundRoute, _Mapping]]] = ...) -> None: ...

class ConfigDelta(_message.Message):
    __slots__ = ("edge", "upsert_phones", "delete_phones", "upsert_trunks", "delete_trunks", "upsert_dids", "delete_dids", "upsert_number_plans", "delete_number_plans", "upsert_outbound_routes", "delete_outbound_routes")
    EDGE_FIELD_NUMBER: _ClassVar[int]
    UPSERT_PHONES_FIELD_NUMBER: _ClassVar[int]
    DELETE_PHONES_FIELD_NUMBER: _ClassVar[int]
    UPSERT_TRUNKS_FIELD_NUMBER: _ClassVar[int]
    DELETE_TRUNKS_FIELD_NUMBER: _ClassVar[int]
    UPSERT_DIDS_FIELD_NUMBER: _ClassVar[int]
    DELETE_DIDS_FIELD_NUMBER: _ClassVar[int]
    UPSERT_NUMBER_PLANS_FIELD_NUMBER: _ClassVar[int]
    DELETE_NUMBER_PLANS_FIELD_NUMBER: _ClassVar[int]
    UPSERT_OUTBOUND_ROUTES_FIELD_NUMBER: _ClassVar[int]
    DELETE_OUTBOUND_ROUTES_FIELD_NUMBER: _ClassVar[int]
    edge: EdgeSettings
    upsert_phones: _containers.RepeatedCompositeFieldContainer[Phone]
    delete_phones: _containers.RepeatedScalarFieldContainer[str]
    upsert_trunks: _containers.RepeatedCompositeFieldContainer[Trunk]
    delete_trunks: _containers.RepeatedScalarFieldContainer[str]
    upsert_dids: _containers.RepeatedCompositeFieldContainer[Did]
    delete_dids: _containers.RepeatedScalarFieldContainer[str]
    upsert_number_plans: _containers.RepeatedCompositeFieldContainer[NumberPlan]
    delete_number_plans: _containers.RepeatedScalarFieldContainer[str]
    upsert_outbound_routes: _containers.RepeatedCompositeFieldContainer[OutboundRoute]
    delete_outbound_routes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, edge: _Optional[_Union[EdgeSettings, _Mapping]] = ..., upsert_phones: _Optional[_Iterable[_Union[Phone, _Mapping]]] = ..., delete_phones: _Optional[_Iterable[str]] = ..., upsert_trunks: _Optional[_Iterable[_Union[Trunk, _Mapping]]] = ..., delete_trunks: _Optional[_Iterable[str]] = ..., upsert_dids: _Optional[_Iterable[_Union[Did, _Mapping]]] = ..., delete_dids: _Optional[_Iterable[str]] = ..., upsert_number_plans: _Optional[_Iterable[_Union[NumberPlan, _Mapping]]] = ..., delete_number_plans: _Optional[_Iterable[str]] = ..., upsert_outbound_routes: _Optional[_Iterable[_Union[OutboundRoute, _Mapping]]] = ..., delete_outbound_routes: _Optional[_Iterable[str]] = ...) -> None: ...

class EdgeSettings(_message.Message):
    __slots__ = ("name", "domain", "site_id", "min_expires", "max_expires", "default_expires", "media_ports", "media_timeout", "no_answer_timeout", "max_registration_rate", "max_call_rate")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_EXPIRES_FIELD_NUMBER: _ClassVar[int]
    MAX_EXPIRES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_EXPIRES_FIELD_NUMBER: _ClassVar[int]
    MEDIA_PORTS_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    NO_ANSWER_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_REGISTRATION_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_CALL_RATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    domain: str
    site_id: str
    min_expires: int
    max_expires: int
    default_expires: int
    media_ports: str
    media_timeout: float
    no_answer_timeout: float
    max_registration_rate: str
    max_call_rate: str
    def __init__(self, name: _Optional[str] = ..., domain: _Optional[str] = ..., site_id: _Optional[str] = ..., min_expires: _Optional[int] = ..., max_expires: _Optional[int] = ..., default_expires: _Optional[int] = ..., media_ports: _Optional[str] = ..., media_timeout: _Optional[float] = ..., no_answer_timeout: _Optional[float] = ..., max_registration_rate: _Optional[str] = ..., max_call_rate: _Optional[str] = ...) -> None: ...

class DigestSecret(_message.Message):
    __slots__ = ("algorithm", "ha1")
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    HA1_FIELD_NUMBER: _ClassVar[int]
    algorithm: str
    ha1: str
    def __init__(self, algorithm: _Optional[str] = ..., ha1: _Optional[str] = ...) -> None: ...

class Phone(_message.Message):
    __slots__ = ("id", "name", "type", "extension", "digest", "site_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    EXTENSION_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    type: PhoneType
    extension: str
    digest: _containers.RepeatedCompositeFieldContainer[DigestSecret]
    site_id: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[_Union[PhoneType, str]] = ..., extension: _Optional[str] = ..., digest: _Optional[_Iterable[_Union[DigestSecret, _Mapping]]] = ..., site_id: _Optional[str] = ...) -> None: ...

class Trunk(_message.Message):
    __slots__ = ("id", "name", "allow_cidrs", "digest_username", "digest", "outbound_proxy", "transport", "codecs")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALLOW_CIDRS_FIELD_NUMBER: _ClassVar[int]
    DIGEST_USERNAME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    OUTBOUND_PROXY_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    CODECS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    allow_cidrs: _containers.RepeatedScalarFieldContainer[str]
    digest_username: str
    digest: _containers.RepeatedCompositeFieldContainer[DigestSecret]
    outbound_proxy: str
    transport: str
    codecs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., allow_cidrs: _Optional[_Iterable[str]] = ..., digest_username: _Optional[str] = ..., digest: _Optional[_Iterable[_Union[DigestSecret, _Mapping]]] = ..., outbound_proxy: _Optional[str] = ..., transport: _Optional[str] = ..., codecs: _Optional[_Iterable[str]] = ...) -> None: ...

class Did(_message.Message):
    __slots__ = ("id", "number", "target_extension", "trunk_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TARGET_EXTENSION_FIELD_NUMBER: _ClassVar[int]
    TRUNK_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    number: str
    target_extension: str
    trunk_id: str
    def __init__(self, id: _Optional[str] = ..., number: _Optional[str] = ..., target_extension: _Optional[str] = ..., trunk_id: _Optional[str] = ...) -> None: ...

class NumberPlan(_message.Message):
    __slots__ = ("id", "name", "match", "replace", "classification", "priority")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MATCH_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    match: str
    replace: str
    classification: str
    priority: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., match: _Optional[str] = ..., replace: _Optional[str] = ..., classification: _Optional[str] = ..., priority: _Optional[int] = ...) -> None: ...

class OutboundRoute(_message.Message):
    __slots__ = ("id", "name", "classifications", "trunk_ids", "priority")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    TRUNK_IDS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    classifications: _containers.RepeatedScalarFieldContainer[str]
    trunk_ids: _containers.RepeatedScalarFieldContainer[str]
    priority: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., classifications: _Optional[_Iterable[str]] = ..., trunk_ids: _Optional[_Iterable[str]] = ..., priority: _Optional[int] = ...) -> None: ...

class TrunkState(_message.Message):
    __slots__ = ("trunk_id", "reachable", "last_change")
    TRUNK_ID_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    LAST_CHANGE_FIELD_NUMBER: _ClassVar[int]
    trunk_id: str
    reachable: bool
    last_change: float
    def __init__(self, trunk_id: _Optional[str] = ..., reachable: _Optional[bool] = ..., last_change: _Optional[float] = ...) -> None: ...

class EdgeStatus(_message.Message):
    __slots__ = ("config_version", "registrations", "active_calls", "trunks", "link", "reported_at")
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    REGISTRATIONS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_CALLS_FIELD_NUMBER: _ClassVar[int]
    TRUNKS_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    REPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    config_version: int
    registrations: int
    active_calls: int
    trunks: _containers.RepeatedCompositeFieldContainer[TrunkState]
    link: LinkState
    reported_at: float
    def __init__(self, config_version: _Optional[int] = ..., registrations: _Optional[int] = ..., active_calls: _Optional[int] = ..., trunks: _Optional[_Iterable[_Union[TrunkState, _Mapping]]] = ..., link: _Optional[_Union[LinkState, str]] = ..., reported_at: _Optional[float] = ...) -> None: ...

class StatusAck(_message.Message):
    __slots__ = ("latest_version",)
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    latest_version: int
    def __init__(self, latest_version: _Optional[int] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("idempotency_key", "kind", "payload_json", "created")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    kind: str
    payload_json: str
    created: float
    def __init__(self, idempotency_key: _Optional[str] = ..., kind: _Optional[str] = ..., payload_json: _Optional[str] = ..., created: _Optional[float] = ...) -> None: ...

class EventBatch(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class RefusedEvent(_message.Message):
    __slots__ = ("idempotency_key", "reason")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    reason: str
    def __init__(self, idempotency_key: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class EventAck(_message.Message):
    __slots__ = ("stored_keys", "refused")
    STORED_KEYS_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    stored_keys: _containers.RepeatedScalarFieldContainer[str]
    refused: _containers.RepeatedCompositeFieldContainer[RefusedEvent]
    def __init__(self, stored_keys: _Optional[_Iterable[str]] = ..., refused: _Optional[_Iterable[_Union[RefusedEvent, _Mapping]]] = ...) -> None: ...
