using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace WeakSeg.Tests.Support;

/// <summary>
/// The built CLI (weakseg.dll next to the test assembly) in a child process, with its output captured: for what an in-process run
/// cannot show, such as a fresh process's environment or a signal (SIGTERM, SIGINT) delivered to the process.
/// </summary>
public sealed class CliProcess : IDisposable
{
    public const int SigInt = 2, SigTerm = 15;

    readonly Process _process;
    readonly StringBuilder _out = new(), _err = new();

    CliProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => { if (e.Data is { } line) lock (_out) _out.AppendLine(line); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is { } line) lock (_err) _err.AppendLine(line); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>Starts <c>weakseg ARGS</c> with NO_COLOR=1 and the given extra environment variables.</summary>
    public static CliProcess Start(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "weakseg.dll");
        if (!File.Exists(dll)) throw new FileNotFoundException("the CLI is not built next to the tests", dll);
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (string.IsNullOrEmpty(host) || !File.Exists(host))
            host = Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
        var psi = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["NO_COLOR"] = "1";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) psi.Environment[key] = value;
        StopIgnoringSigInt();
        return new CliProcess(Process.Start(psi)!);
    }

    /// <summary>Runs <c>weakseg ARGS</c> to the end.</summary>
    public static (int Code, string Out, string Err) Run(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        using var cli = Start(args, environment);
        return cli.WaitForExit(TimeSpan.FromMinutes(10));
    }

    public bool HasExited => _process.HasExited;

    /// <summary>Sends signal <paramref name="number"/> to the process (POSIX kill(2)).</summary>
    public void Signal(int number)
    {
        if (Kill(_process.Id, number) != 0) throw new InvalidOperationException($"kill({_process.Id}, {number}) failed: errno {Marshal.GetLastWin32Error()}");
    }

    /// <summary>Waits for the exit (killing the process after <paramref name="timeout"/>) and returns its code and output.</summary>
    public (int Code, string Out, string Err) WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException($"weakseg did not exit within {timeout}; stderr so far: {Text(_err)}");
        }
        _process.WaitForExit();                                                         // the output events are drained
        return (_process.ExitCode, Text(_out), Text(_err));
    }

    static string Text(StringBuilder b) { lock (b) return b.ToString(); }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }

    /// <summary>
    /// A process started in the background by a non-interactive shell (`cmd &amp;`, nohup, some CI runners) ignores SIGINT, and a
    /// child inherits an ignored signal across exec, so the CLI would never see the Ctrl-C a test sends it. When this process
    /// ignores SIGINT (bit 2 of SigIgn in /proc/self/status), it is set back to the default action, which the child then inherits
    /// and replaces with its own handler. (While SIGINT is ignored the runtime has no handler of its own to lose.)
    /// </summary>
    static void StopIgnoringSigInt()
    {
        if (!OperatingSystem.IsLinux()) return;
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        if (line is null) return;
        ulong ignored = Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16);
        if ((ignored & (1UL << (SigInt - 1))) != 0) SetSignalAction(SigInt, IntPtr.Zero);                 // SIG_DFL
    }

    [DllImport("libc", EntryPoint = "signal")]
    static extern IntPtr SetSignalAction(int signal, IntPtr handler);

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    static extern int Kill(int pid, int signal);
}
