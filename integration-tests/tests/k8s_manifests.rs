//! deploy/k8s on paper: the files are what deploy/k8s/render writes from the services'
//! definitions and deploy/topics.toml, and they keep the invariants a cluster relies on:
//! probes on the health port, a grace period longer than the drain, static membership from
//! the pod's name, a disruption budget over the pods, and lag-based scaling (KEDA) that never
//! asks for more replicas than the partitions of the topics the group reads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use serde::Deserialize;
use serde_json::{Value, json};
use service_kit::k8s::{Target, manifests};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn k8s_file(name: &str) -> Result<String> {
    let path = repository().join("deploy/k8s").join(name);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// Every YAML document of `text`.
fn documents(text: &str) -> Result<Vec<Value>> {
    yaml_serde::Deserializer::from_str(text)
        .map(|document| Value::deserialize(document).context("a YAML document"))
        .collect()
}

fn of_kind<'a>(documents: &'a [Value], kind: &str) -> Result<&'a Value> {
    let found: Vec<&Value> = documents.iter().filter(|d| d["kind"] == kind).collect();
    ensure!(found.len() == 1, "{} {kind} resources, not 1", found.len());
    Ok(found[0])
}

fn partitions() -> Result<BTreeMap<String, i32>> {
    let specs = kafka::manifest::read(&repository().join("deploy/topics.toml"))?;
    Ok(specs.into_iter().map(|s| (s.name, s.partitions)).collect())
}

#[test]
fn each_service_file_is_what_its_definition_renders() -> Result<()> {
    let partitions = partitions()?;
    for definition in &integration_tests::SERVICES {
        let rendered = manifests(
            definition,
            |topic| partitions.get(topic).copied(),
            &Target::default(),
        )?;
        let file = format!("{}.yaml", definition.name);
        ensure!(
            k8s_file(&file)? == rendered,
            "deploy/k8s/{file} is not what the definition renders: run deploy/k8s/render"
        );
    }
    Ok(())
}

#[test]
fn each_service_keeps_the_invariants_of_a_cluster() -> Result<()> {
    let partitions = partitions()?;
    let drain = kafka::DEFAULT_DRAIN_TIMEOUT.as_secs();
    for definition in &integration_tests::SERVICES {
        let described = definition.describe();
        let file = format!("{}.yaml", definition.name);
        let documents = documents(&k8s_file(&file)?)?;
        let check = || -> Result<()> {
            let set = of_kind(&documents, "StatefulSet")?;
            let pod = &set["spec"]["template"];
            let labels = &pod["metadata"]["labels"];
            ensure!(
                set["spec"]["selector"]["matchLabels"] == *labels,
                "selector"
            );
            let container = &pod["spec"]["containers"][0];
            ensure!(
                container["ports"]
                    == json!([{"name": "http", "containerPort": described.http_port}]),
                "the container's port is not the service's HTTP port {}",
                described.http_port
            );
            for (probe, path) in [
                ("livenessProbe", "/health/live"),
                ("readinessProbe", "/health/ready"),
                ("startupProbe", "/health/live"),
            ] {
                ensure!(
                    container[probe]["httpGet"] == json!({"path": path, "port": "http"}),
                    "{probe} does not ask {path} on the http port"
                );
            }
            let grace = pod["spec"]["terminationGracePeriodSeconds"]
                .as_u64()
                .context("no terminationGracePeriodSeconds")?;
            ensure!(
                grace > drain,
                "grace period {grace} s is not longer than the {drain} s drain"
            );
            let env = container["env"].as_array().context("no env")?;
            let static_id = env
                .iter()
                .find(|e| e["name"] == "FTGO_KAFKA__GROUP_INSTANCE_ID")
                .context("no FTGO_KAFKA__GROUP_INSTANCE_ID")?;
            ensure!(
                static_id["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name",
                "the static member id is not the pod's name"
            );
            // The kubelet probes the pod's address: health must listen beyond the loopback.
            ensure!(
                env.iter()
                    .any(|e| e["name"] == "FTGO_HTTP__HOST" && e["value"] == "0.0.0.0"),
                "health listens on 127.0.0.1 only (the default), where no probe reaches it"
            );
            for resource in ["requests", "limits"] {
                ensure!(
                    container["resources"][resource]["memory"].is_string(),
                    "no memory {resource}"
                );
            }
            ensure!(
                pod["spec"]["securityContext"]["runAsNonRoot"] == true,
                "runs as root"
            );
            // The schema's owner migrates, before the service runs as a role that may not;
            // the service's container never sees the owner's credentials.
            let init = &pod["spec"]["initContainers"][0];
            ensure!(
                init["args"] == json!(["migrate"]) && init["image"] == container["image"],
                "no init container migrating with the service's image"
            );
            let migration = |e: &&Value| e["name"] == "FTGO_DATABASE__MIGRATION_URL";
            ensure!(
                init["env"]
                    .as_array()
                    .is_some_and(|env| env.iter().any(|e| migration(&e))),
                "the init container has no migration URL"
            );
            ensure!(
                !env.iter().any(|e| migration(&e)),
                "the service's container holds the schema owner's URL"
            );

            let budget = of_kind(&documents, "PodDisruptionBudget")?;
            ensure!(
                budget["spec"]["selector"]["matchLabels"] == *labels,
                "the disruption budget does not select the pods"
            );

            let scaled = of_kind(&documents, "ScaledObject")?;
            ensure!(
                scaled["spec"]["scaleTargetRef"]["name"] == set["metadata"]["name"]
                    && scaled["spec"]["scaleTargetRef"]["kind"] == "StatefulSet",
                "the ScaledObject scales something else"
            );
            let most = described
                .consumes
                .iter()
                .map(|topic| partitions.get(*topic).copied().context(topic.to_string()))
                .collect::<Result<Vec<i32>>>()?
                .into_iter()
                .max()
                .context("consumes nothing")?;
            let max_replicas = scaled["spec"]["maxReplicaCount"]
                .as_i64()
                .context("no maxReplicaCount")?;
            ensure!(
                (1..=i64::from(most)).contains(&max_replicas),
                "maxReplicaCount {max_replicas} is above {most}, the most partitions of the topics it reads"
            );
            let triggers = scaled["spec"]["triggers"]
                .as_array()
                .context("no triggers")?;
            let mut topics = BTreeSet::new();
            for trigger in triggers {
                ensure!(
                    trigger["type"] == "kafka",
                    "a trigger that is not Kafka lag"
                );
                ensure!(
                    trigger["metadata"]["consumerGroup"] == described.group.as_str(),
                    "a trigger on another group than {}",
                    described.group
                );
                topics.insert(
                    trigger["metadata"]["topic"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                );
            }
            let consumed: BTreeSet<String> =
                described.consumes.iter().map(|t| (*t).to_owned()).collect();
            ensure!(
                topics == consumed,
                "triggers on {topics:?}, consumes {consumed:?}"
            );
            Ok(())
        };
        check().with_context(|| format!("deploy/k8s/{file}"))?;
    }
    Ok(())
}

#[test]
fn the_kustomization_lists_every_file_and_the_topics_are_the_manifests() -> Result<()> {
    let kustomization = documents(&k8s_file("kustomization.yaml")?)?;
    let listed: BTreeSet<String> = kustomization[0]["resources"]
        .as_array()
        .context("no resources")?
        .iter()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect();
    let mut present = BTreeSet::new();
    for entry in std::fs::read_dir(repository().join("deploy/k8s"))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") && name != "kustomization.yaml" {
            present.insert(name);
        }
    }
    ensure!(
        listed == present,
        "kustomization.yaml lists {listed:?}; deploy/k8s has {present:?}"
    );
    for definition in &integration_tests::SERVICES {
        ensure!(
            listed.contains(&format!("{}.yaml", definition.name)),
            "{} is not deployed",
            definition.name
        );
    }

    let topics: BTreeMap<String, i64> = documents(&k8s_file("topics.yaml")?)?
        .iter()
        .map(|d| {
            (
                d["spec"]["topicName"].as_str().unwrap_or("").to_owned(),
                d["spec"]["partitions"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let declared: BTreeMap<String, i64> = partitions()?
        .into_iter()
        .map(|(name, count)| (name, i64::from(count)))
        .collect();
    ensure!(
        topics == declared,
        "deploy/k8s/topics.yaml differs from deploy/topics.toml: run deploy/k8s/render"
    );
    Ok(())
}
