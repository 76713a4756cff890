using System.CommandLine;
using WeakSeg.Cli.Commands;
using WeakSeg.Runtime;

namespace WeakSeg.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        if (!ProcessGroup.LaunchedByMpi) return Run(args);
        // Under mpirun/srun: MPI starts before any command; ranks other than 0 print nothing on stdout (rank 0 speaks for the job).
        ProcessGroup world;
        try { world = ProcessGroup.World; }
        catch (Exception e) { return CliErrors.Report(e); }
        if (!world.IsRoot) Console.SetOut(TextWriter.Null);
        int code = Run(args);
        if (code != 0 && world.IsDistributed && !ProcessGroup.FailureIsAgreed) world.Abort(code);   // no rank waits for this one
        world.Shutdown();
        return code;
    }

    /// <summary>Builds the command tree (also used by tests).</summary>
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("WeakSeg: weakly-supervised semantic segmentation with class-token vision transformers.");
        foreach (var command in CommandCatalog.All()) root.Subcommands.Add(command);
        return root;
    }

    /// <summary>Parses and runs; user errors become one line on stderr and exit code 1.</summary>
    public static int Run(string[] args)
    {
        var root = BuildRoot();
        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
        try
        {
            var parsed = root.Parse(args);
            if (parsed.Errors.Count > 0) return CliErrors.ReportParseError(parsed);
            return parsed.Invoke(config);
        }
        catch (Exception e)
        {
            return CliErrors.Report(e);
        }
    }
}

/// <summary>Turns exceptions into one clear line (stack trace only with WEAKSEG_DEBUG=1).</summary>
public static class CliErrors
{
    public static int Report(Exception e)
    {
        var debug = Environment.GetEnvironmentVariable("WEAKSEG_DEBUG") == "1";
        // Parallel work that fails in several places (e.g. a full disk) reports its first failure.
        var ex = e is AggregateException ae && ae.Flatten().InnerExceptions is { Count: > 0 } inner ? inner[0] : e;
        var line = ex switch
        {
            WeakSegException w => w.Message,
            FileNotFoundException f => $"{f.FileName ?? "file"}: not found",
            DirectoryNotFoundException d => d.Message,
            UnauthorizedAccessException u => u.Message,
            IOException io => io.Message,
            OperationCanceledException => "cancelled",
            _ => $"unexpected {ex.GetType().Name}: {ex.Message.Split('\n')[0]} (set WEAKSEG_DEBUG=1 for the stack trace)",
        };
        // A failure every MPI rank saw at the same point is reported once, by rank 0.
        if (ProcessGroup.FailureIsAgreed && !ProcessGroup.World.IsRoot) return 1;
        Console.Error.WriteLine("error: " + line);
        if (debug) Console.Error.WriteLine(ex);
        return 1;
    }

    /// <summary>A command line that does not parse: its first error as one line, and where the help is (not the help itself).</summary>
    public static int ReportParseError(ParseResult parsed)
    {
        var message = Readable(parsed.Errors[0].Message);
        var command = string.Join(' ', CommandPath(parsed.CommandResult));
        Console.Error.WriteLine($"error: {message} (see `{command} --help`)");
        return 1;
    }

    static IEnumerable<string> CommandPath(System.CommandLine.Parsing.CommandResult? result)
    {
        var names = new Stack<string>();
        for (var r = result; r is not null; r = r.Parent as System.CommandLine.Parsing.CommandResult)
            names.Push(r.Parent is null ? "weakseg" : r.Command.Name);
        return names;
    }

    /// <summary>The parser's message with .NET type names replaced by what the user types.</summary>
    internal static string Readable(string message) =>
        System.Text.RegularExpressions.Regex.Replace(
            System.Text.RegularExpressions.Regex.Replace(message, @"as expected type '([^']*)'", m => "as " + TypeWord(m.Groups[1].Value)),
            @"\s*[\r\n]+\s*", " ");                                                  // the parser's lists of choices, on one line

    static string TypeWord(string type) => type switch
    {
        _ when type.Contains("Int32") || type.Contains("Int64") => "an integer",
        _ when type.Contains("Double") || type.Contains("Single") => "a number",
        _ when type.Contains("Boolean") => "true or false",
        _ => "a value of this option",
    };
}
