using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Runtime;

/// <summary>A convolution-heavy command in a fresh process: libtorch's NNPACK warning does not flood standard error.</summary>
public class NnpackCliTests
{
    [Fact]
    public void Convolutions_in_a_fresh_process_print_no_nnpack_warning_and_env_says_what_was_done()
    {
        // 1 training step and 1 image of the DeepLab (a dilated ResNet-18: a few dozen convolutions per pass)
        var (code, _, err) = CliProcess.Run(["bench", "seg", "--seg-model", "deeplab-largefov", "--steps", "1", "--warmup", "0", "--images", "1",
            "--batch-size", "1", "--gemm-size", "64", "--threads", "1"]);
        Assert.True(code == 0, err);
        Assert.DoesNotContain("NNPACK", err);
        var (envCode, env, envErr) = CliProcess.Run(["env", "--gemm-size", "0"]);
        Assert.True(envCode == 0, envErr);
        Assert.Contains(env.Split('\n'), l => l.StartsWith("nnpack available (left on)", StringComparison.Ordinal)
                                             || l.StartsWith("nnpack not supported on this CPU: turned off", StringComparison.Ordinal));
    }
}
