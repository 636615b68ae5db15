/*
 * A local, loopback-only Neo4j Community server for Sybilscope, started from jars gathered by
 * deploy/neo4j/pom.xml. Run it in Java's source-file mode (nothing to compile):
 *
 *   java -Xmx2g -cp 'LIB/*' deploy/neo4j/Launcher.java HOME BOLT_PORT PAGECACHE
 *
 * or compiled (app/neo4j_local/ does this once per cache when javac is there, which also lets
 * the JVM use a class-data sharing archive):
 *
 *   java -Xmx2g -cp 'LIB/*:launcher.jar' Launcher HOME BOLT_PORT PAGECACHE
 *
 * HOME       server home; data in HOME/data, logs in HOME/logs, an empty HOME/import; nothing
 *            is written elsewhere
 *            (the caller also points java.io.tmpdir into HOME and turns off hsperfdata)
 * BOLT_PORT  Bolt listens on 127.0.0.1:BOLT_PORT only
 * PAGECACHE  page cache size, e.g. 512m or 2g
 *
 * Authentication is off (loopback-only development server), HTTP/HTTPS connectors are off, usage
 * data reporting is off. LOAD CSV can reach neither the server's files nor the network: file
 * URLs are refused (dbms.security.allow_csv_import_from_file_urls=false, and the import root is
 * the empty HOME/import in case that is ever turned back on), and every remote address is on the
 * URL block list (internal.dbms.cypher_ip_blocklist = 0.0.0.0/0, ::/0; Community has no LOAD
 * privilege to deny instead). Sybilscope loads through Bolt parameters, never through LOAD CSV.
 * Prints one line "sybilscope-neo4j ready ..." once the default database
 * is available, and shuts the database down cleanly on SIGTERM/SIGINT.
 * Exit codes: 0 after a clean shutdown, 2 bad arguments, 1 start failure.
 */

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;

import inet.ipaddr.IPAddressString;

import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.io.ByteUnit;
import org.neo4j.kernel.internal.Version;

public final class Launcher {
    private static final String TAG = "sybilscope-neo4j";

    private Launcher() {}

    public static void main(String[] args) throws Exception {
        PrintStream out = System.out;
        if (args.length != 3) {
            System.err.println(TAG + " usage: Launcher HOME BOLT_PORT PAGECACHE");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath().normalize();
        int port;
        long pageCache;
        try {
            port = Integer.parseInt(args[1]);
            if (port < 1 || port > 65535) {
                throw new NumberFormatException("out of range");
            }
            pageCache = ByteUnit.parse(args[2]);
        } catch (RuntimeException e) {
            System.err.println(TAG + " bad argument: " + e.getMessage());
            System.exit(2);
            return;
        }
        Path data = home.resolve("data");
        Path logs = home.resolve("logs");
        Path importRoot = home.resolve("import");
        Files.createDirectories(data);
        Files.createDirectories(logs);
        Files.createDirectories(importRoot);

        SocketAddress bolt = new SocketAddress("127.0.0.1", port);
        long t0 = System.nanoTime();
        out.println(TAG + " starting Neo4j " + Version.getNeo4jVersion() + " home=" + home
                + " bolt=127.0.0.1:" + port + " pagecache=" + args[2]);
        out.flush();

        DatabaseManagementService dbms;
        try {
            dbms = new DatabaseManagementServiceBuilder(home)
                    .setConfig(GraphDatabaseSettings.data_directory, data)
                    .setConfig(GraphDatabaseSettings.logs_directory, logs)
                    .setConfig(GraphDatabaseSettings.auth_enabled, false)
                    .setConfig(GraphDatabaseSettings.udc_enabled, false)
                    .setConfig(GraphDatabaseSettings.pagecache_memory, pageCache)
                    .setConfig(GraphDatabaseSettings.keep_logical_logs, "256M size")
                    .setConfig(GraphDatabaseSettings.preallocate_logical_logs, false)
                    .setConfig(GraphDatabaseSettings.allow_file_urls, false)
                    .setConfig(GraphDatabaseSettings.load_csv_file_url_root, importRoot)
                    .setConfig(GraphDatabaseInternalSettings.cypher_ip_blocklist,
                            List.of(new IPAddressString("0.0.0.0/0"), new IPAddressString("::/0")))
                    .setConfig(BoltConnector.enabled, true)
                    .setConfig(BoltConnector.listen_address, bolt)
                    .setConfig(BoltConnector.advertised_address, bolt)
                    .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
                    .setConfig(HttpConnector.enabled, false)
                    .setConfig(HttpsConnector.enabled, false)
                    // Bolt's netty event loops otherwise wait 5 s per connector on shutdown.
                    .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0)
                    .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_timeout, Duration.ofSeconds(5))
                    .build();
        } catch (Throwable e) {
            System.err.println(TAG + " failed to start: " + e);
            e.printStackTrace();
            System.exit(1);
            return;
        }

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            out.println(TAG + " stopping");
            out.flush();
            try {
                dbms.shutdown();
                out.println(TAG + " stopped");
            } catch (Throwable e) {
                out.println(TAG + " error while stopping: " + e);
            }
            out.flush();
            stopped.countDown();
        }, "sybilscope-neo4j-shutdown"));

        try {
            GraphDatabaseService db = dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
            if (!db.isAvailable(Duration.ofMinutes(10).toMillis())) {
                throw new IllegalStateException("database " + db.databaseName() + " did not become available");
            }
        } catch (Throwable e) {
            System.err.println(TAG + " failed to start: " + e);
            System.exit(1);
            return;
        }
        long ms = (System.nanoTime() - t0) / 1_000_000;
        out.println(TAG + " ready bolt://127.0.0.1:" + port + " version=" + Version.getNeo4jVersion()
                + " started_in_ms=" + ms);
        out.flush();
        stopped.await();
    }
}
