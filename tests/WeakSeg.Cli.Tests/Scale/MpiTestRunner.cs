using System.Diagnostics;
using Xunit;

namespace WeakSeg.Tests.Scale;

/// <summary>A test that needs Open MPI's <c>mpirun</c>: skipped, with the reason, where it is not installed.</summary>
public sealed class MpiFactAttribute : FactAttribute
{
    public MpiFactAttribute()
    {
        if (MpiTestRunner.Mpirun is null) Skip = "mpirun not found on PATH: install Open MPI (Debian: apt-get install openmpi-bin) to run the MPI tests";
    }
}

/// <summary>Runs the built CLI (weakseg.dll next to the test assembly) in fresh processes: alone, or as N ranks under mpirun.</summary>
public static class MpiTestRunner
{
    /// <summary>Full path of mpirun, or null.</summary>
    public static string? Mpirun { get; } = (Environment.GetEnvironmentVariable("PATH") ?? "")
        .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
        .Select(d => Path.Combine(d, "mpirun")).FirstOrDefault(File.Exists);

    static string DotnetHost()
    {
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(host) && File.Exists(host)) return host;
        return Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
    }

    /// <summary>weakseg ARGS in a fresh process (no MPI).</summary>
    public static (int Code, string Stdout, string Stderr) Single(params string[] args) => Start(DotnetHost(), [CliDll(), .. args], []);

    /// <summary>mpirun --oversubscribe --allow-run-as-root -np N weakseg ARGS (oversubscribed: this machine may have fewer cores).</summary>
    public static (int Code, string Stdout, string Stderr) Ranks(int n, params string[] args) => RanksWithEnvironment(n, [], args);

    /// <summary><see cref="Ranks"/> with extra environment variables, set for mpirun and exported to every rank (-x).</summary>
    public static (int Code, string Stdout, string Stderr) RanksWithEnvironment(int n, (string Name, string Value)[] environment, params string[] args) =>
        Start(Mpirun ?? throw new InvalidOperationException("mpirun not found"),
            ["--oversubscribe", "--allow-run-as-root", .. environment.SelectMany(e => new[] { "-x", e.Name }),
             "-np", n.ToString(System.Globalization.CultureInfo.InvariantCulture), DotnetHost(), CliDll(), .. args], environment);

    static string CliDll()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "weakseg.dll");
        Assert.True(File.Exists(dll), dll + " not found");
        return dll;
    }

    static (int, string, string) Start(string file, IEnumerable<string> args, (string Name, string Value)[] environment)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["NO_COLOR"] = "1";
        foreach (var (name, value) in environment) psi.Environment[name] = value;
        // The test host itself is never an MPI rank; a launcher's variables inherited from a CI job would confuse the children.
        foreach (var key in new[] { "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMIX_SIZE", "PMI_RANK", "PMI_SIZE" })
            psi.Environment.Remove(key);
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromMinutes(10)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', psi.ArgumentList)} did not finish in 10 minutes");
        }
        return (process.ExitCode, stdout.Result, stderr);
    }
}
