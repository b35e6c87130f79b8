//! The `ov-config` property: OpenVINO properties the model is compiled with, written
//! "KEY=VALUE,KEY=VALUE" (e.g. "ENABLE_CPU_PINNING=NO,NUM_STREAMS=3").

/// Keys that have their own `ovinfer` property, which is where they are set.
const OWN_PROPERTY: [(&str, &str); 1] = [("PERFORMANCE_HINT", "performance-hint")];

/// The (key, value) pairs of `text`, in order. Spaces around keys and values are ignored, and so
/// are empty items; OpenVINO itself rejects keys and values it does not know when compiling.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (key, value) = item
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .ok_or_else(|| {
                format!(
                    "ov-config: {item:?} is not KEY=VALUE; write OpenVINO properties as \
                     \"KEY=VALUE,KEY=VALUE\" (e.g. \"ENABLE_CPU_PINNING=NO\")"
                )
            })?;
        if let Some((_, own)) = OWN_PROPERTY.iter().find(|(k, _)| *k == key) {
            return Err(format!(
                "ov-config: set {key} with the {own} property, not in ov-config"
            ));
        }
        if pairs.iter().any(|(k, _)| k == key) {
            return Err(format!("ov-config: {key} is given twice"));
        }
        pairs.push((key.to_string(), value.to_string()));
    }
    Ok(pairs)
}

/// `pairs` with ovinfer's defaults for `device` added where the user gave none: on CPU, inference
/// threads are not pinned to cores (`ENABLE_CPU_PINNING=NO`). In a pipeline the cores are shared
/// with decoders, converters and other pipelines, and pinned threads cannot move away from them:
/// measured on the SSD IR with decoding on the same 2 cores, unpinned threads were about 5%
/// faster with the throughput hint and 8% with latency (see docs/benchmarks.md).
pub fn with_defaults(device: &str, mut pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    let defaults: &[(&str, &str)] = match device {
        "CPU" => &[("ENABLE_CPU_PINNING", "NO")],
        _ => &[],
    };
    for (key, value) in defaults {
        if !pairs.iter().any(|(k, _)| k == key) {
            pairs.push((key.to_string(), value.to_string()));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_pairs_in_order() {
        assert_eq!(parse(""), Ok(vec![]));
        assert_eq!(
            parse(" ENABLE_CPU_PINNING = NO , NUM_STREAMS=3,"),
            Ok(pairs(&[("ENABLE_CPU_PINNING", "NO"), ("NUM_STREAMS", "3")]))
        );
    }

    #[test]
    fn rejects_what_is_not_a_pair() {
        for bad in ["NUM_STREAMS", "=3", "NUM_STREAMS=", "A=1, = "] {
            let e = parse(bad).expect_err(bad);
            assert!(e.contains("is not KEY=VALUE"), "{bad}: {e}");
        }
    }

    #[test]
    fn cpu_threads_are_unpinned_unless_the_user_says_otherwise() {
        assert_eq!(
            with_defaults("CPU", pairs(&[("NUM_STREAMS", "3")])),
            pairs(&[("NUM_STREAMS", "3"), ("ENABLE_CPU_PINNING", "NO")])
        );
        assert_eq!(
            with_defaults("CPU", pairs(&[("ENABLE_CPU_PINNING", "YES")])),
            pairs(&[("ENABLE_CPU_PINNING", "YES")])
        );
        // Other devices do not know the key: nothing is added.
        assert_eq!(with_defaults("GPU", vec![]), vec![]);
        assert_eq!(with_defaults("AUTO", vec![]), vec![]);
    }

    #[test]
    fn rejects_repeated_keys_and_keys_with_their_own_property() {
        assert_eq!(
            parse("NUM_STREAMS=2,NUM_STREAMS=3"),
            Err("ov-config: NUM_STREAMS is given twice".to_string())
        );
        let e = parse("PERFORMANCE_HINT=LATENCY").unwrap_err();
        assert!(e.contains("performance-hint property"), "{e}");
    }
}
