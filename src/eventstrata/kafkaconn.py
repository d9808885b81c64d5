"""How every Kafka client of the product connects: TLS and SASL from ``EVENTSTRATA_KAFKA_*``.

One value, ``KafkaSecurity``, made from the settings once (``KafkaSecurity.of``) and turned into
aiokafka's keyword arguments by ``options``; the ingest consumer, the DLQ producer, ``produce``,
``dlq list/show/replay``, the API's HTTP ingest and dead-letter reads, and topic creation all
pass it. Pure apart from reading the certificate files when ``options`` builds the TLS context
(the standard library's default client context: the broker's certificate and host name are
verified). Importing it costs nothing: ``config`` imports it in every process.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventstrata.config import Settings

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """A Kafka listener's security: ``protocol`` one of ``PROTOCOLS``; with SASL a
    ``mechanism`` of ``MECHANISMS`` and the user's ``username``/``password``; with TLS the CA
    file that signed the broker's certificate (empty: the system's trust store) and optionally
    a client certificate and key (PEM files)."""

    protocol: str = "PLAINTEXT"
    mechanism: str = ""
    username: str = ""
    password: str = ""
    ca: str = ""
    cert: str = ""
    key: str = ""

    @classmethod
    def of(cls, settings: Settings) -> KafkaSecurity:
        return cls(settings.kafka_security_protocol.upper(), settings.kafka_sasl_mechanism.upper(),
                   settings.kafka_username, settings.kafka_password, settings.kafka_tls_ca,
                   settings.kafka_tls_cert, settings.kafka_tls_key)

    def problem(self) -> str | None:
        """What is inconsistent (for ``Settings.validate``), or None."""
        if self.protocol not in PROTOCOLS:
            return f"EVENTSTRATA_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}"
        sasl = self.protocol.startswith("SASL_")
        if sasl and self.mechanism not in MECHANISMS:
            return f"EVENTSTRATA_KAFKA_SASL_MECHANISM must be one of {', '.join(MECHANISMS)} with SASL"
        if sasl and not (self.username and self.password):
            return "EVENTSTRATA_KAFKA_USERNAME and EVENTSTRATA_KAFKA_PASSWORD are needed with SASL"
        if not self.protocol.endswith("SSL") and (self.ca or self.cert or self.key):
            return "EVENTSTRATA_KAFKA_TLS_* are set but the security protocol has no TLS (SSL or SASL_SSL)"
        if bool(self.cert) != bool(self.key):
            return "EVENTSTRATA_KAFKA_TLS_CERT and EVENTSTRATA_KAFKA_TLS_KEY go together"
        return None

    def options(self) -> dict[str, Any]:
        """aiokafka keyword arguments (consumer, producer and admin client alike). Raises
        ``OSError``/``ssl.SSLError`` when a certificate file cannot be read."""
        out: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol.endswith("SSL"):
            context = ssl.create_default_context(cafile=self.ca or None)
            if self.cert:
                context.load_cert_chain(self.cert, self.key)
            out["ssl_context"] = context
        if self.protocol.startswith("SASL_"):
            out.update(sasl_mechanism=self.mechanism, sasl_plain_username=self.username,
                       sasl_plain_password=self.password)
        return out


PLAINTEXT = KafkaSecurity()
"""No TLS, no authentication (the local stack's broker)."""
