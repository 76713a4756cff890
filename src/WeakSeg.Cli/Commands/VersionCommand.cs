using System.CommandLine;
using TorchSharp;
using WeakSeg.Runtime;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg env`: versions and whether libtorch loads (a quick installation check).</summary>
public static class VersionCommand
{
    public static Command Create()
    {
        var cmd = new Command("env", "Print WeakSeg, .NET and libtorch versions and check that libtorch loads.");
        cmd.SetAction(_ =>
        {
            TorchRuntime.EnsureLoaded();
            Console.WriteLine($"weakseg {typeof(TorchRuntime).Assembly.GetName().Version}");
            Console.WriteLine($".NET {Environment.Version}");
            Console.WriteLine($"libtorch {torch.__version__} (threads {torch.get_num_threads()}, cuda {(torch.cuda.is_available() ? "yes" : "no")})");
            return 0;
        });
        return cmd;
    }
}
