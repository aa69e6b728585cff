// Hello.java: a com.sun.net.httpserver.HttpServer on 127.0.0.1 with a kernel-chosen
// port (printed first), for SocketTests: /hello answers, /quit stops it.
import com.sun.net.httpserver.HttpServer;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;

public class Hello {
    public static void main(String[] args) throws Exception {
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 16);
        CountDownLatch done = new CountDownLatch(1);
        server.createContext("/hello", ex -> {
            byte[] body = ("hello from java " + ex.getRequestURI().getQuery() + "\n").getBytes(StandardCharsets.UTF_8);
            ex.sendResponseHeaders(200, body.length);
            try (OutputStream os = ex.getResponseBody()) { os.write(body); }
        });
        server.createContext("/quit", ex -> {
            byte[] body = "bye\n".getBytes(StandardCharsets.UTF_8);
            ex.sendResponseHeaders(200, body.length);
            try (OutputStream os = ex.getResponseBody()) { os.write(body); }
            done.countDown();
        });
        server.start();
        System.out.println("PORT " + server.getAddress().getPort());
        done.await();
        server.stop(0);
        System.out.println("served");
    }
}
