// Files.java: a Java program that writes, reads, lists, renames and deletes files in the
// directory args[0] (java.io and java.nio), for scripts/long-tests.sh: its output must be
// the same natively and under junction, with no "unsupported system call" line.
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.security.MessageDigest;
import java.util.*;

public class Files {
    public static void main(String[] args) throws Exception {
        Path dir = Paths.get(args[0]);
        java.nio.file.Files.createDirectories(dir);
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 10000; i++) sb.append("line ").append(i).append('\n');
        Path a = dir.resolve("a.txt");
        java.nio.file.Files.writeString(a, sb.toString());
        try (BufferedReader r = new BufferedReader(new FileReader(a.toFile()))) {
            int lines = 0;
            while (r.readLine() != null) lines++;
            System.out.println("lines " + lines);
        }
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve("b.bin").toFile(), "rw")) {
            f.seek(1 << 16);
            f.writeInt(42);
            f.seek(1 << 16);
            System.out.println("int " + f.readInt() + " length " + f.length());
        }
        byte[] digest = MessageDigest.getInstance("SHA-256").digest(java.nio.file.Files.readAllBytes(a));
        System.out.println("sha256 " + HexFormat.of().formatHex(digest));
        java.nio.file.Files.move(a, dir.resolve("c.txt"));
        java.nio.file.Files.createDirectory(dir.resolve("sub"));
        java.nio.file.Files.writeString(dir.resolve("sub/d.txt"), "d");
        List<String> names = new ArrayList<>();
        try (var walk = java.nio.file.Files.walk(dir)) {
            walk.forEach(p -> names.add(dir.relativize(p) + (java.nio.file.Files.isDirectory(p) ? "/" : " " + p.toFile().length())));
        }
        Collections.sort(names);
        names.forEach(n -> System.out.println("entry " + n));
        try (var walk = java.nio.file.Files.walk(dir)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
        System.out.println("exists " + java.nio.file.Files.exists(dir));
    }
}
