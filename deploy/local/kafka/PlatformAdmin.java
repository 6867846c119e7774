// The local platform's Kafka health check, run by deploy/local/{up,status} with the broker's own
// jars on the classpath: it answers before any Rust is built (`up` waits on it, `status` reports
// it). The topics themselves are applied by `ftgo topics apply` (crates/cli).
//
//   PlatformAdmin health BOOTSTRAP
//       Prints the cluster id, node count and controller; exits 1 when the cluster does not answer.
//   PlatformAdmin list-topics BOOTSTRAP
//       Prints every topic with its partition count, a line each (for status).

import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.TopicDescription;

public final class PlatformAdmin {
    private static final long TIMEOUT_SECONDS = 30;

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: PlatformAdmin health|list-topics BOOTSTRAP");
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
}
