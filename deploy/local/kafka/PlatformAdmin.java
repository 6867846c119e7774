// The local platform's Kafka admin helper, run by deploy/local/{up,status} with the broker's own
// jars on the classpath (so it speaks exactly the broker's protocol version). One JVM does the
// whole job: starting a JVM per topic with kafka-topics would make `up` slow.
//
//   PlatformAdmin health BOOTSTRAP
//       Prints the cluster id, node count and controller; exits 1 when the cluster does not answer.
//   PlatformAdmin apply-topics BOOTSTRAP < spec
//       Creates missing topics and brings configs in line with the manifest, idempotently.
//       The spec is what deploy/local/topics.py prints: one topic a line,
//       NAME <TAB> PARTITIONS <TAB> REPLICATION <TAB> key=value;key=value
//   PlatformAdmin list-topics BOOTSTRAP
//       Prints every topic with its partition count, a line each (for status).

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.config.ConfigResource;

public final class PlatformAdmin {
    private static final long TIMEOUT_SECONDS = 30;

    record TopicSpec(String name, int partitions, short replication, Map<String, String> configs) {}

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: PlatformAdmin health|apply-topics|list-topics BOOTSTRAP");
            System.exit(2);
        }
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[1]);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "10000");
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "ftgo-platform-admin");
        try (Admin admin = Admin.create(props)) {
            int code = switch (args[0]) {
                case "health" -> health(admin);
                case "apply-topics" -> applyTopics(admin, readSpec());
                case "list-topics" -> listTopics(admin);
                default -> {
                    System.err.println("unknown subcommand " + args[0]);
                    yield 2;
                }
            };
            System.exit(code);
        } catch (ExecutionException e) {
            System.err.println("error: " + e.getCause().getMessage());
            System.exit(1);
        }
    }

    private static int health(Admin admin) throws Exception {
        DescribeClusterResult cluster = admin.describeCluster();
        String id = cluster.clusterId().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        int nodes = cluster.nodes().get(TIMEOUT_SECONDS, TimeUnit.SECONDS).size();
        var controller = cluster.controller().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        System.out.printf("cluster %s, %d broker(s), controller node %d%n", id, nodes, controller.id());
        return 0;
    }

    private static int listTopics(Admin admin) throws Exception {
        Set<String> names = admin.listTopics().names().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        Map<String, TopicDescription> described =
            admin.describeTopics(names).allTopicNames().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        new TreeMap<>(described).forEach((name, d) ->
            System.out.printf("%s\t%d%n", name, d.partitions().size()));
        return 0;
    }

    private static List<TopicSpec> readSpec() throws Exception {
        List<TopicSpec> specs = new ArrayList<>();
        var in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            if (line.isBlank()) continue;
            String[] f = line.split("\t", -1);
            Map<String, String> configs = new LinkedHashMap<>();
            if (f.length > 3 && !f[3].isEmpty()) {
                for (String kv : f[3].split(";")) {
                    int eq = kv.indexOf('=');
                    configs.put(kv.substring(0, eq), kv.substring(eq + 1));
                }
            }
            specs.add(new TopicSpec(f[0], Integer.parseInt(f[1]), Short.parseShort(f[2]), configs));
        }
        return specs;
    }

    private static int applyTopics(Admin admin, List<TopicSpec> specs) throws Exception {
        Set<String> existing = admin.listTopics().names().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);

        List<NewTopic> missing = specs.stream()
            .filter(s -> !existing.contains(s.name()))
            .map(s -> new NewTopic(s.name(), s.partitions(), s.replication()).configs(s.configs()))
            .collect(Collectors.toList());
        if (!missing.isEmpty()) {
            admin.createTopics(missing).all().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
            missing.forEach(t -> System.out.printf("created   %s (%d partitions)%n", t.name(), t.numPartitions()));
        }

        List<TopicSpec> present = specs.stream().filter(s -> existing.contains(s.name())).toList();
        if (present.isEmpty()) return 0;
        List<String> names = present.stream().map(TopicSpec::name).toList();
        Map<String, TopicDescription> described =
            admin.describeTopics(names).allTopicNames().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        List<ConfigResource> resources = names.stream()
            .map(n -> new ConfigResource(ConfigResource.Type.TOPIC, n)).toList();
        Map<ConfigResource, Config> configs =
            admin.describeConfigs(resources).all().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);

        int failures = 0;
        Map<String, NewPartitions> grow = new LinkedHashMap<>();
        Map<ConfigResource, Collection<AlterConfigOp>> alter = new LinkedHashMap<>();
        for (TopicSpec spec : present) {
            int actual = described.get(spec.name()).partitions().size();
            if (actual > spec.partitions()) {
                System.err.printf("error     %s has %d partitions, the manifest says %d; Kafka cannot "
                    + "shrink a topic: delete it or raise the manifest%n", spec.name(), actual, spec.partitions());
                failures++;
            } else if (actual < spec.partitions()) {
                grow.put(spec.name(), NewPartitions.increaseTo(spec.partitions()));
                System.out.printf("grown     %s %d -> %d partitions (keys now map to other partitions)%n",
                    spec.name(), actual, spec.partitions());
            }
            ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, spec.name());
            Config current = configs.get(resource);
            List<AlterConfigOp> ops = new ArrayList<>();
            spec.configs().forEach((key, value) -> {
                ConfigEntry entry = current.get(key);
                if (entry == null || !value.equals(entry.value())) {
                    ops.add(new AlterConfigOp(new ConfigEntry(key, value), AlterConfigOp.OpType.SET));
                }
            });
            if (!ops.isEmpty()) {
                alter.put(resource, ops);
                System.out.printf("updated   %s %s%n", spec.name(), ops.stream()
                    .map(op -> op.configEntry().name() + "=" + op.configEntry().value())
                    .collect(Collectors.joining(", ")));
            }
        }
        if (!grow.isEmpty()) admin.createPartitions(grow).all().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        if (!alter.isEmpty()) admin.incrementalAlterConfigs(alter).all().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        int unchanged = (int) present.stream()
            .filter(s -> !grow.containsKey(s.name()))
            .filter(s -> !alter.containsKey(new ConfigResource(ConfigResource.Type.TOPIC, s.name())))
            .count() - failures;
        if (unchanged > 0) System.out.printf("unchanged %d topic(s)%n", unchanged);
        return failures == 0 ? 0 : 1;
    }
}
