using WeakSeg.Pipelines;
using Xunit;

namespace WeakSeg.Tests.Support;

/// <summary>Reading trained run folders back, and the interrupted-then-resumed training that resume tests compare.</summary>
public static class TrainedRuns
{
    /// <summary>The weights of a trained run (its final weights, or <paramref name="weights"/>), by state_dict key; integer buffers
    /// (BatchNorm's num_batches_tracked) as floats.</summary>
    public static Dictionary<string, float[]> Weights(string runDir, string? weights = null)
    {
        using var method = TrainPipeline.LoadTrained(runDir, out _, weights);
        return method.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.to_type(TorchSharp.torch.ScalarType.Float32).data<float>().ToArray());
    }

    /// <summary>
    /// Trains <paramref name="recipe"/> on <paramref name="data"/> uninterrupted in <c>dir/full</c>, and in <c>dir/split</c> stopped
    /// (cancelled) after <paramref name="stopAfter"/> steps, then resumed to the end. Returns both runs' outcomes.
    /// </summary>
    public static (TrainOutcome Full, TrainOutcome Resumed) UninterruptedAndResumed(TempDir dir, string data, TrainRecipe recipe, long stopAfter)
    {
        var full = TrainPipeline.Run(new TrainRequest { DataRoot = data, RunDirectory = dir.File("full"), Recipe = recipe });
        Assert.True(full.Result.Completed);
        using (var cancel = new CancellationTokenSource())
        {
            var first = TrainPipeline.Run(new TrainRequest { DataRoot = data, RunDirectory = dir.File("split"), Recipe = recipe },
                progress: new CancelAt(stopAfter, cancel), cancellationToken: cancel.Token);
            Assert.False(first.Result.Completed);
            Assert.Equal(stopAfter, first.Result.Step);
        }
        var resumed = TrainPipeline.Run(new TrainRequest { DataRoot = data, RunDirectory = dir.File("split"), Recipe = recipe, Resume = true });
        Assert.True(resumed.Result.Completed);
        return (full, resumed);
    }

    /// <summary>
    /// <see cref="UninterruptedAndResumed"/>, then asserts that both runs end with the same finite loss and bit-identical weights
    /// (every state-dict entry, EMA teachers and buffers included). Returns the uninterrupted run's weights.
    /// </summary>
    public static Dictionary<string, float[]> AssertResumeIsExact(TempDir dir, string data, TrainRecipe recipe, long stopAfter)
    {
        var (full, resumed) = UninterruptedAndResumed(dir, data, recipe, stopAfter);
        Assert.True(double.IsFinite(full.Result.LastLoss));
        Assert.Equal(full.Result.LastLoss, resumed.Result.LastLoss);
        var a = Weights(dir.File("full"));
        var b = Weights(dir.File("split"));
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (key, values) in a) Assert.True(values.SequenceEqual(b[key]), $"weights '{key}' differ after resume");
        return a;
    }

    sealed class CancelAt(long step, CancellationTokenSource source) : IProgress<ProgressUpdate>
    {
        public void Report(ProgressUpdate value) { if (value.Done == step) source.Cancel(); }
    }
}
