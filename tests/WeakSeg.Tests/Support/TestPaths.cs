namespace WeakSeg.Tests.Support;

public static class TestPaths
{
    /// <summary>The repository root (the folder holding WeakSeg.sln).</summary>
    public static string RepoRoot
    {
        get
        {
            var d = new DirectoryInfo(AppContext.BaseDirectory);
            while (d != null && !File.Exists(Path.Combine(d.FullName, "WeakSeg.sln"))) d = d.Parent;
            return d?.FullName ?? throw new InvalidOperationException("WeakSeg.sln not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>The golden fixtures kept in the repository (tests/fixtures; provenance in its README).</summary>
    public static string Fixtures => Path.Combine(RepoRoot, "tests", "fixtures");

    /// <summary>A fixture file by its path under tests/fixtures, e.g. <c>Fixture("reference", "weaktr_aaf.safetensors")</c>.</summary>
    public static string Fixture(params string[] parts) => Path.Combine([Fixtures, .. parts]);

    /// <summary>A fresh temporary directory, deleted when disposed.</summary>
    public static TempDir NewTempDir() => new();
}

public sealed class TempDir : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "weakseg-test-" + Guid.NewGuid().ToString("N")[..12]);
    public TempDir() => Directory.CreateDirectory(Path);
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
}
