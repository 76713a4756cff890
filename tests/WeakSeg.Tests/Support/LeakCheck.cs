using TorchSharp;

namespace WeakSeg.Tests.Support;

/// <summary>Tensor-lifetime check: after two warm-up calls (optimizer state, gradients), more calls must not add live tensors.</summary>
public static class LeakCheck
{
    public static void AssertNoGrowth(Action step, int repeats = 3)
    {
        step();
        step();
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < repeats; i++) step();
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }
}
