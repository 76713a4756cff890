using System.CommandLine;
using WeakSeg.Cli.Commands;

namespace WeakSeg.Cli;

public static class Program
{
    public static int Main(string[] args) => Run(args);

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
            return root.Parse(args).Invoke(config);
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
        var ex = e is AggregateException { InnerExceptions.Count: 1 } ae ? ae.InnerException! : e;
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
        Console.Error.WriteLine("error: " + line);
        if (debug) Console.Error.WriteLine(ex);
        return 1;
    }
}
