// The local platform's Kafka helper, run by deploy/local/{up,status} with the broker's own jars
// on the classpath, as the client its CONFIG file describes (ftgo-admin's, over SASL_SSL): it
// answers before any Rust is built (`up` waits on it, `status` reports it), and it applies what
// librdkafka's Rust binding cannot (ACLs, SCRAM credentials). The topics themselves are applied
// by `ftgo topics apply` (crates/cli).
//
//   PlatformAdmin CONFIG health BOOTSTRAP
//       Prints the cluster id, node count and controller; exits 1 when the cluster does not answer.
//   PlatformAdmin CONFIG list-topics BOOTSTRAP
//       Prints every topic with its partition count, a line each (for status).
//   PlatformAdmin CONFIG apply-security BOOTSTRAP PASSWORD_DIR APPLIED_DIR < PLAN
//       PLAN is `ftgo acls plan`: `user NAME` lines (each gets the SCRAM-SHA-512 password in
//       PASSWORD_DIR/NAME), `acl User:NAME RESOURCE PATTERN NAME OPERATION` lines, and
//       `registry NAME ROLE` lines (the schema registry's, skipped here). A
//       credential is set only when the cluster has none for the user or the password changed
//       since it was set (APPLIED_DIR/NAME.sha256, kept beside the broker's storage): setting it
//       again draws a new salt, and a client logging in meanwhile could be refused. The
//       cluster ends with exactly the plan's ACLs for the plan's users: missing ones are
//       created, others of those users deleted; other principals' ACLs are left alone.

import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public final class PlatformAdmin {
    private static final long TIMEOUT_SECONDS = 30;
    private static final int SCRAM_ITERATIONS = 8192;

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: PlatformAdmin CONFIG health|list-topics BOOTSTRAP");
            System.err.println("       PlatformAdmin CONFIG apply-security BOOTSTRAP PASSWORD_DIR APPLIED_DIR < PLAN");
            System.exit(2);
        }
        Properties props = new Properties();
        try (FileInputStream in = new FileInputStream(args[0])) {
            props.load(in);
        }
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[2]);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "10000");
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "ftgo-platform-admin");
        try (Admin admin = Admin.create(props)) {
            int code = switch (args[1]) {
                case "health" -> health(admin);
                case "list-topics" -> listTopics(admin);
                case "apply-security" -> {
                    if (args.length != 5) {
                        System.err.println("apply-security needs PASSWORD_DIR and APPLIED_DIR");
                        yield 2;
                    }
                    yield applySecurity(admin, Path.of(args[3]), Path.of(args[4]));
                }
                default -> {
                    System.err.println("unknown subcommand " + args[1]);
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

    private static int applySecurity(Admin admin, Path passwords, Path applied) throws Exception {
        List<String> users = new ArrayList<>();
        Set<AclBinding> wanted = new HashSet<>();
        BufferedReader plan = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = plan.readLine()) != null; ) {
            String[] words = line.trim().split("\\s+");
            if (words.length == 2 && words[0].equals("user")) {
                users.add(words[1]);
            } else if (words.length == 6 && words[0].equals("acl")) {
                wanted.add(new AclBinding(
                    new ResourcePattern(ResourceType.valueOf(words[2]), words[4], PatternType.valueOf(words[3])),
                    new AccessControlEntry(words[1], "*", AclOperation.valueOf(words[5]), AclPermissionType.ALLOW)));
            } else if (words.length == 3 && words[0].equals("registry")) {
                // The schema registry's roles: deploy/local/up applies them there.
            } else if (!line.isBlank()) {
                System.err.println("not a plan line: " + line);
                return 2;
            }
        }
        Set<String> known = new HashSet<>(
            admin.describeUserScramCredentials().users().get(TIMEOUT_SECONDS, TimeUnit.SECONDS));
        Files.createDirectories(applied);
        List<UserScramCredentialAlteration> credentials = new ArrayList<>();
        Map<Path, String> digests = new TreeMap<>();
        for (String user : users) {
            String password = Files.readString(passwords.resolve(user), StandardCharsets.UTF_8).strip();
            String digest = HexFormat.of().formatHex(
                MessageDigest.getInstance("SHA-256").digest(password.getBytes(StandardCharsets.UTF_8)));
            Path record = applied.resolve(user + ".sha256");
            boolean current = known.contains(user) && Files.exists(record)
                && Files.readString(record, StandardCharsets.UTF_8).strip().equals(digest);
            if (!current) {
                credentials.add(new UserScramCredentialUpsertion(user,
                    new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS), password));
                digests.put(record, digest);
            }
        }
        if (!credentials.isEmpty()) {
            admin.alterUserScramCredentials(credentials).all().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        }
        for (Map.Entry<Path, String> entry : digests.entrySet()) {
            Files.writeString(entry.getKey(), entry.getValue() + "\n", StandardCharsets.UTF_8);
        }

        Set<String> principals = new HashSet<>();
        users.forEach(user -> principals.add("User:" + user));
        Set<AclBinding> existing = new HashSet<>();
        for (AclBinding acl : admin.describeAcls(AclBindingFilter.ANY).values().get(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
            if (principals.contains(acl.entry().principal())) {
                existing.add(acl);
            }
        }
        List<AclBinding> create = wanted.stream().filter(acl -> !existing.contains(acl)).toList();
        List<AclBindingFilter> delete = existing.stream()
            .filter(acl -> !wanted.contains(acl)).map(AclBinding::toFilter).toList();
        if (!create.isEmpty()) {
            admin.createAcls(create).all().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        }
        if (!delete.isEmpty()) {
            admin.deleteAcls(delete).all().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        }
        System.out.printf("passwords: %d set, %d unchanged; ACLs: %d created, %d deleted, %d kept%n",
            credentials.size(), users.size() - credentials.size(),
            create.size(), delete.size(), wanted.size() - create.size());
        return 0;
    }
}
