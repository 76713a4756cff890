using System.Runtime.ExceptionServices;

namespace WeakSeg.Runtime;

/// <summary>Parallel loop over images with per-thread state; a failure surfaces as the first inner exception (not an AggregateException).</summary>
public static class ParallelImages
{
    public static void For<TLocal>(int count, int maxParallelism, Func<TLocal> init, Func<int, TLocal, TLocal> body, Action<TLocal> merge)
    {
        try
        {
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, maxParallelism) },
                init, (i, _, local) => body(i, local), merge);
        }
        catch (AggregateException ae)
        {
            var flat = ae.Flatten().InnerExceptions;
            var first = flat.FirstOrDefault(e => e is WeakSegException) ?? flat[0];
            ExceptionDispatchInfo.Capture(first).Throw();
            throw;
        }
    }
}
