// The SQL endpoint through PostgreSQL's JDBC driver (Debian's libpostgresql-jdbc-java), the
// driver Metabase, Tableau and DBeaver use: what a BI tool does on connect (the database
// metadata: schemas, tables, columns), then one prepared statement run past the driver's
// prepareThreshold, so that the server-side prepared statement and binary transfer are used.
// Run by tests/unit/sql_wire_test.cpp: java JdbcClient PORT KEY PARTNER; prints one fact a line.
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;

public class JdbcClient {
  public static void main(String[] args) throws Exception {
    String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/tally?sslmode=disable";
    try (Connection c = DriverManager.getConnection(url, "tally", args[1])) {
      DatabaseMetaData md = c.getMetaData();
      System.out.println("product " + md.getDatabaseProductName() + " "
          + md.getDatabaseMajorVersion());
      try (ResultSet rs = md.getSchemas()) {
        while (rs.next()) System.out.println("schema " + rs.getString("TABLE_SCHEM"));
      }
      try (ResultSet rs = md.getTables(null, "public", "%", new String[] {"TABLE", "VIEW"})) {
        while (rs.next()) System.out.println("table " + rs.getString("TABLE_NAME"));
      }
      try (ResultSet rs = md.getColumns(null, "public", "usage", "%")) {
        while (rs.next()) {
          System.out.println("column " + rs.getString("COLUMN_NAME") + " "
              + rs.getString("TYPE_NAME") + " " + rs.getInt("DATA_TYPE"));
        }
      }
      String sql = "SELECT partner_id, count(*) AS n, sum(duration_s) AS seconds, max(ts) AS last"
          + " FROM usage WHERE kind = ? AND partner_id <> ? GROUP BY partner_id ORDER BY 1";
      for (int i = 0; i < 8; i++) {
        try (PreparedStatement ps = c.prepareStatement(sql)) {
          ps.setString(1, "voice_call");
          ps.setLong(2, Long.parseLong(args[2]));
          try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
              System.out.println("run " + i + " " + rs.getLong(1) + " " + rs.getLong(2) + " "
                  + rs.getBigDecimal(3) + " " + rs.getTimestamp(4));
            }
          }
        }
      }
    }
  }
}
