using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Repository;

/// <summary>
/// A user's clone has nothing beside it: no test, build step or CI script may read a folder outside the repository,
/// and every fixture file a test names must exist under tests/fixtures, listed in its README.
/// </summary>
public class SelfContainedRepositoryTests
{
    // Built from parts so that this file does not match its own scan.
    static readonly string[] OutsidePatterns = [".." + "/shared", ".." + "\\shared", "\"..\", \"" + "shared\"", "shared/" + "fixtures"];

    static IEnumerable<string> ScannedFiles()
    {
        string root = TestPaths.RepoRoot;
        string[] folders = ["src", "tests", "bench", "build", ".ci"];
        string[] extensions = [".cs", ".csproj", ".props", ".targets", ".sh", ".json", ""];
        foreach (var folder in folders)
        {
            string dir = Path.Combine(root, folder);
            if (!Directory.Exists(dir)) continue;
            foreach (var file in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories))
            {
                string rel = Path.GetRelativePath(root, file).Replace('\\', '/');
                if (rel.Contains("/bin/") || rel.Contains("/obj/") || rel.StartsWith("tests/fixtures/")) continue;
                if (extensions.Contains(Path.GetExtension(file))) yield return file;
            }
        }
        foreach (var top in new[] { "Directory.Build.props", "Directory.Packages.props", "global.json" })
            if (File.Exists(Path.Combine(root, top))) yield return Path.Combine(root, top);
    }

    [Fact]
    public void No_source_build_or_CI_file_reads_outside_the_repository()
    {
        var offenders = new List<string>();
        foreach (var file in ScannedFiles())
        {
            var lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
                if (OutsidePatterns.Any(p => lines[i].Contains(p, StringComparison.Ordinal)))
                    offenders.Add($"{Path.GetRelativePath(TestPaths.RepoRoot, file)}:{i + 1}: {lines[i].Trim()}");
        }
        Assert.True(offenders.Count == 0, "files that reach outside the repository:\n" + string.Join('\n', offenders));
    }

    [Fact]
    public void Every_fixture_file_is_in_the_repository_small_and_documented()
    {
        string fixtures = TestPaths.Fixtures;
        Assert.True(Directory.Exists(fixtures), fixtures + " is missing");
        string index = File.ReadAllText(Path.Combine(fixtures, "README.md"));
        var files = Directory.EnumerateFiles(fixtures, "*.safetensors", SearchOption.AllDirectories).ToList();
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            Assert.True(new FileInfo(file).Length < 2 * 1024 * 1024, file + " is 2 MiB or more");
            string folder = Path.GetFileName(Path.GetDirectoryName(file)!);
            Assert.True(File.Exists(Path.Combine(Path.GetDirectoryName(file)!, "README.md")), $"{folder}/ has no README with the provenance of its files");
            Assert.Contains($"`{folder}/`", index);
        }
    }

    [Fact]
    public void Every_fixture_a_test_names_exists()
    {
        // Tests name fixtures as TestPaths.Fixture(folder, file); each such file must be present (comment lines skipped).
        var pattern = new System.Text.RegularExpressions.Regex("Fixture\\(\"([^\"]+)\",\\s*\"([^\"]+\\.safetensors)\"\\)");
        var missing = new List<string>();
        int named = 0;
        foreach (var file in Directory.EnumerateFiles(Path.Combine(TestPaths.RepoRoot, "tests"), "*.cs", SearchOption.AllDirectories))
        {
            if (file.Contains("/bin/") || file.Contains("/obj/")) continue;
            var code = string.Join('\n', File.ReadAllLines(file).Where(l => !l.TrimStart().StartsWith("//")));
            foreach (System.Text.RegularExpressions.Match m in pattern.Matches(code))
            {
                named++;
                if (!File.Exists(TestPaths.Fixture(m.Groups[1].Value, m.Groups[2].Value)))
                    missing.Add($"{Path.GetFileName(file)}: {m.Groups[1].Value}/{m.Groups[2].Value}");
            }
        }
        Assert.True(named > 0, "no test names a fixture through TestPaths.Fixture");
        Assert.True(missing.Count == 0, "fixtures named by tests but absent:\n" + string.Join('\n', missing));
    }
}
