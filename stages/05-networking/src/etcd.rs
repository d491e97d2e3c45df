//! The cluster store: etcd v3, spoken through its JSON gateway.
//!
//! An overlay network spans hosts, so its records (the network, its VNI and subnet, which
//! address each container holds, where each container runs) cannot live in one host's store. They
//! live in etcd, a replicated key-value store, and every host's skiff reads and writes them there.
//!
//! etcd v3 speaks gRPC; it also serves the same calls as JSON over plain HTTP (the *gateway*):
//! `POST /v3/kv/range`, `/v3/kv/put`, `/v3/kv/deleterange`, `/v3/kv/txn`, with keys and values
//! base64-encoded. That needs nothing but the HTTP client stage 04 already uses for registries
//! (ureq), where a gRPC client crate would bring tonic, prost and an async runtime for four
//! calls. See etcd's "gRPC gateway" and "Interacting with etcd" documentation.
//!
//! **Allocations are transactions.** To take VNI 4097, a host does not read "is it free?" then
//! write: two hosts could both read "free". It sends one transaction, "if key
//! `/skiff/overlay/vni/4097` has never been created (`create_revision == 0`), create it", which
//! etcd applies atomically; exactly one host sees `succeeded: true`.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};
use ureq::Agent;

/// What can go wrong talking to etcd.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// The `--cluster-store` value is not `etcd://HOST:PORT`.
    #[error(
        "invalid cluster store {text:?}: expected etcd://HOST:PORT (e.g. etcd://10.0.0.1:2379)"
    )]
    InvalidUrl {
        /// What the user wrote.
        text: String,
    },
    /// etcd could not be reached, or the request failed on the way.
    #[error(
        "cluster store {endpoint} unreachable ({call}): check that etcd runs there and --cluster-store names it"
    )]
    Unreachable {
        /// `http://host:port`.
        endpoint: String,
        /// The gateway path called.
        call: &'static str,
        /// The transport error.
        #[source]
        source: ureq::Error,
    },
    /// etcd answered with an error status.
    #[error("cluster store {endpoint} refused {call}: HTTP {status}: {body}")]
    Refused {
        /// `http://host:port`.
        endpoint: String,
        /// The gateway path called.
        call: &'static str,
        /// The HTTP status.
        status: u16,
        /// etcd's message.
        body: String,
    },
    /// etcd's answer is not the JSON the gateway documents.
    #[error("cluster store {endpoint} gave an unreadable answer to {call}: {reason}")]
    BadAnswer {
        /// `http://host:port`.
        endpoint: String,
        /// The gateway path called.
        call: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// A result of an etcd call.
pub type Result<T> = std::result::Result<T, EtcdError>;

impl EtcdError {
    /// etcd refused a request naming a lease it does not have (expired, or revoked): the
    /// gateway's `requested lease not found`.
    pub fn is_lease_not_found(&self) -> bool {
        matches!(self, EtcdError::Refused { body, .. } if body.contains("lease not found"))
    }
}

/// A client of one etcd endpoint.
#[derive(Debug, Clone)]
pub struct Etcd {
    agent: Agent,
    /// `http://host:port`.
    endpoint: String,
}

/// One key and its value, as [`Etcd::list`] returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Vec<u8>,
}

impl Etcd {
    /// A client of the store named `etcd://HOST:PORT`. Nothing is sent yet.
    pub fn new(url: &str) -> Result<Etcd> {
        let invalid = || EtcdError::InvalidUrl {
            text: url.to_owned(),
        };
        let rest = url.strip_prefix("etcd://").ok_or_else(invalid)?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(invalid)?;
        if host.is_empty() || host.contains('/') || port.parse::<u16>().is_err() {
            return Err(invalid());
        }
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(3)))
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .new_agent();
        Ok(Etcd {
            agent,
            endpoint: format!("http://{host}:{port}"),
        })
    }

    /// `http://host:port`, for messages.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    // ANCHOR: call
    /// One gateway call: POST the JSON request, read the JSON answer.
    fn call(&self, call: &'static str, request: &Value) -> Result<Value> {
        let url = format!("{}{call}", self.endpoint);
        let mut response = self
            .agent
            .post(&url)
            .header("content-type", "application/json")
            .send(request.to_string())
            .map_err(|source| EtcdError::Unreachable {
                endpoint: self.endpoint.clone(),
                call,
                source,
            })?;
        let status = response.status().as_u16();
        let body =
            response
                .body_mut()
                .read_to_string()
                .map_err(|source| EtcdError::Unreachable {
                    endpoint: self.endpoint.clone(),
                    call,
                    source,
                })?;
        if status != 200 {
            return Err(EtcdError::Refused {
                endpoint: self.endpoint.clone(),
                call,
                status,
                body: body.trim().to_owned(),
            });
        }
        serde_json::from_str(&body).map_err(|e| self.bad(call, e.to_string()))
    }
    // ANCHOR_END: call

    fn bad(&self, call: &'static str, reason: String) -> EtcdError {
        EtcdError::BadAnswer {
            endpoint: self.endpoint.clone(),
            call,
            reason,
        }
    }

    /// The value of `key`, if it exists.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let answer = self.call("/v3/kv/range", &json!({ "key": b64(key.as_bytes()) }))?;
        Ok(self
            .kvs("/v3/kv/range", &answer)?
            .into_iter()
            .next()
            .map(|kv| kv.value))
    }

    /// Every key that starts with `prefix`, in key order.
    pub fn list(&self, prefix: &str) -> Result<Vec<KeyValue>> {
        let answer = self.call(
            "/v3/kv/range",
            &json!({ "key": b64(prefix.as_bytes()), "range_end": b64(&prefix_end(prefix)) }),
        )?;
        self.kvs("/v3/kv/range", &answer)
    }

    /// Sets `key` to `value`, whatever it held.
    pub fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.call(
            "/v3/kv/put",
            &json!({ "key": b64(key.as_bytes()), "value": b64(value) }),
        )?;
        Ok(())
    }

    // ANCHOR: create
    /// Creates `key` with `value` only if it does not exist: one transaction comparing the key's
    /// `create_revision` with 0 (never created, or deleted since). `true` when this call created
    /// it, `false` when another host holds it.
    pub fn create(&self, key: &str, value: &[u8]) -> Result<bool> {
        let key = b64(key.as_bytes());
        let request = json!({
            "compare": [{
                "target": "CREATE",
                "result": "EQUAL",
                "key": key,
                "create_revision": "0",
            }],
            "success": [{ "request_put": { "key": key, "value": b64(value) } }],
        });
        let answer = self.call("/v3/kv/txn", &request)?;
        // proto3 JSON leaves out false values: no `succeeded` means it failed.
        Ok(answer
            .get("succeeded")
            .and_then(Value::as_bool)
            .unwrap_or(false))
    }
    // ANCHOR_END: create

    // ANCHOR: create_under
    /// Creates `key` with `value`, and writes every `(key, value)` of `with`, only if `key` does
    /// not exist *and* `parent` does: one transaction, so a container's address and endpoint
    /// appear together, and only on a network that is still there. With `lease`, every key is
    /// attached to it.
    pub fn create_under(
        &self,
        key: &str,
        value: &[u8],
        with: &[(&str, &[u8])],
        parent: &str,
        lease: Option<i64>,
    ) -> Result<bool> {
        let key = b64(key.as_bytes());
        let lease = lease.unwrap_or(0).to_string();
        let put = |k: &str, v: &[u8]| json!({ "request_put": { "key": b64(k.as_bytes()), "value": b64(v), "lease": lease } });
        let mut puts =
            vec![json!({ "request_put": { "key": key, "value": b64(value), "lease": lease } })];
        puts.extend(with.iter().map(|(k, v)| put(k, v)));
        let request = json!({
            "compare": [
                { "target": "CREATE", "result": "EQUAL", "key": key, "create_revision": "0" },
                {
                    "target": "CREATE",
                    "result": "GREATER",
                    "key": b64(parent.as_bytes()),
                    "create_revision": "0",
                },
            ],
            "success": puts,
        });
        let answer = self.call("/v3/kv/txn", &request)?;
        Ok(answer
            .get("succeeded")
            .and_then(Value::as_bool)
            .unwrap_or(false))
    }
    // ANCHOR_END: create_under

    // ANCHOR: delete_unless
    /// Deletes `key` only if no key starts with `prefix`, in one transaction (every key of the
    /// range has version 0: there is none). `true` when it was deleted.
    pub fn delete_unless(&self, key: &str, prefix: &str) -> Result<bool> {
        let request = json!({
            "compare": [{
                "target": "VERSION",
                "result": "EQUAL",
                "key": b64(prefix.as_bytes()),
                "range_end": b64(&prefix_end(prefix)),
                "version": "0",
            }],
            "success": [{ "request_delete_range": { "key": b64(key.as_bytes()) } }],
        });
        let answer = self.call("/v3/kv/txn", &request)?;
        Ok(answer
            .get("succeeded")
            .and_then(Value::as_bool)
            .unwrap_or(false))
    }
    // ANCHOR_END: delete_unless

    /// Deletes `key`; `true` if it existed.
    pub fn delete(&self, key: &str) -> Result<bool> {
        let answer = self.call("/v3/kv/deleterange", &json!({ "key": b64(key.as_bytes()) }))?;
        Ok(count(&answer, "deleted") > 0)
    }

    /// Deletes every key that starts with `prefix`; how many there were.
    pub fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let answer = self.call(
            "/v3/kv/deleterange",
            &json!({ "key": b64(prefix.as_bytes()), "range_end": b64(&prefix_end(prefix)) }),
        )?;
        Ok(count(&answer, "deleted"))
    }

    // ANCHOR: lease
    /// A lease of `ttl` seconds (`/v3/lease/grant`): keys put with it go when it expires, that
    /// is when nobody has kept it alive for `ttl` seconds. Returns its id.
    pub fn grant(&self, ttl: u64) -> Result<i64> {
        let answer = self.call("/v3/lease/grant", &json!({ "TTL": ttl.to_string() }))?;
        let id = count(&answer, "ID");
        if id == 0 {
            return Err(self.bad("/v3/lease/grant", format!("no lease id in {answer}")));
        }
        i64::try_from(id).map_err(|e| self.bad("/v3/lease/grant", e.to_string()))
    }

    /// Keeps lease `id` alive for another TTL (`/v3/lease/keepalive`). `false` when the lease
    /// has expired already (its keys are gone).
    pub fn keep_alive(&self, id: i64) -> Result<bool> {
        let answer = self.call("/v3/lease/keepalive", &json!({ "ID": id.to_string() }))?;
        let result = answer.get("result").unwrap_or(&answer);
        Ok(count(result, "TTL") > 0)
    }

    /// Sets `key` to `value`, attached to lease `lease`: it goes when the lease expires.
    pub fn put_leased(&self, key: &str, value: &[u8], lease: i64) -> Result<()> {
        self.call(
            "/v3/kv/put",
            &json!({ "key": b64(key.as_bytes()), "value": b64(value), "lease": lease.to_string() }),
        )?;
        Ok(())
    }
    // ANCHOR_END: lease

    // ANCHOR: watch
    /// Watches every key starting with `prefix` (`/v3/watch`): calls `changed` once the watch
    /// is set up and again for every batch of events, until the stream ends or `changed`
    /// returns `false`. The answer is a stream of JSON objects, one per line, that stays open
    /// for as long as etcd runs: a client of its own, with no overall time limit.
    pub fn watch(&self, prefix: &str, mut changed: impl FnMut() -> bool) -> Result<()> {
        const CALL: &str = "/v3/watch";
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(3)))
            .build()
            .new_agent();
        let request = json!({ "create_request": {
            "key": b64(prefix.as_bytes()),
            "range_end": b64(&prefix_end(prefix)),
        }});
        let unreachable = |source| EtcdError::Unreachable {
            endpoint: self.endpoint.clone(),
            call: CALL,
            source,
        };
        let mut response = agent
            .post(format!("{}{CALL}", self.endpoint))
            .header("content-type", "application/json")
            .send(request.to_string())
            .map_err(unreachable)?;
        let reader = std::io::BufReader::new(response.body_mut().as_reader());
        for line in std::io::BufRead::lines(reader) {
            let line = line.map_err(|e| self.bad(CALL, e.to_string()))?;
            if line.trim().is_empty() {
                continue;
            }
            let message: Value =
                serde_json::from_str(&line).map_err(|e| self.bad(CALL, e.to_string()))?;
            if let Some(error) = message.get("error") {
                return Err(self.bad(CALL, error.to_string()));
            }
            if !changed() {
                return Ok(());
            }
        }
        Ok(())
    }
    // ANCHOR_END: watch

    /// The `kvs` of a range answer, decoded.
    fn kvs(&self, call: &'static str, answer: &Value) -> Result<Vec<KeyValue>> {
        #[derive(Deserialize)]
        struct Kv {
            key: String,
            #[serde(default)]
            value: String,
        }
        let Some(kvs) = answer.get("kvs") else {
            return Ok(Vec::new());
        };
        let kvs: Vec<Kv> =
            serde_json::from_value(kvs.clone()).map_err(|e| self.bad(call, e.to_string()))?;
        kvs.into_iter()
            .map(|kv| {
                let key = STANDARD
                    .decode(&kv.key)
                    .ok()
                    .and_then(|k| String::from_utf8(k).ok())
                    .ok_or_else(|| {
                        self.bad(call, format!("key {:?} is not base64 text", kv.key))
                    })?;
                let value = STANDARD
                    .decode(&kv.value)
                    .map_err(|e| self.bad(call, format!("value of {key}: {e}")))?;
                Ok(KeyValue { key, value })
            })
            .collect()
    }
}

/// Base64, as the gateway wants keys and values.
fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The end of the range of keys starting with `prefix`: the prefix with its last byte plus one
/// (etcd's own `clientv3.GetPrefixRangeEnd`).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xff (or the prefix is empty): to the end of the keyspace.
    vec![0]
}

/// A proto3 int64 field, which the gateway writes as a string and leaves out when zero.
fn count(answer: &Value, field: &str) -> u64 {
    match answer.get(field) {
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        assert_eq!(
            Etcd::new("etcd://10.0.0.1:2379").map(|e| e.endpoint).ok(),
            Some("http://10.0.0.1:2379".to_owned())
        );
        for bad in [
            "10.0.0.1:2379",
            "etcd://10.0.0.1",
            "etcd://:2379",
            "etcd://h:x",
        ] {
            assert!(
                matches!(Etcd::new(bad), Err(EtcdError::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end("/skiff/"), b"/skiff0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
        assert_eq!(prefix_end(""), vec![0]);
    }

    #[test]
    fn counts_read_proto3_json() {
        assert_eq!(count(&json!({"deleted": "3"}), "deleted"), 3);
        assert_eq!(count(&json!({}), "deleted"), 0);
    }
}
