namespace WeakSeg.Refinement;

/// <summary>Output of <see cref="DenseCrf"/>: marginals, their argmax, and where the time went.</summary>
/// <param name="Probabilities">refined marginals Q, [K, H, W] label-major; each pixel sums to 1</param>
/// <param name="Labels">argmax over K per pixel, [H, W] row-major (first label wins ties, as numpy argmax)</param>
/// <param name="Width">image width W</param>
/// <param name="Height">image height H</param>
/// <param name="LabelCount">number of labels K</param>
/// <param name="Timings">wall-clock split of the call</param>
public sealed record DenseCrfResult(float[] Probabilities, byte[] Labels, int Width, int Height, int LabelCount, DenseCrfTimings Timings);

/// <summary>Wall-clock seconds of one <see cref="DenseCrf"/> call.</summary>
/// <param name="TotalSeconds">whole call, validation and unary included</param>
/// <param name="LatticeBuildSeconds">building the permutohedral lattices (all kernels) and their normalisation</param>
/// <param name="LatticeBuildSecondsPerKernel">the same split per kernel (gaussian, bilateral; 0 when disabled)</param>
/// <param name="InferenceSeconds">all mean-field iterations</param>
/// <param name="Iterations">iterations run</param>
/// <param name="Threads">threads allowed</param>
/// <param name="LatticeVertices">lattice vertex count per kernel (gaussian, bilateral; 0 when disabled)</param>
public sealed record DenseCrfTimings(double TotalSeconds, double LatticeBuildSeconds, IReadOnlyList<double> LatticeBuildSecondsPerKernel, double InferenceSeconds, int Iterations, int Threads,
                                     IReadOnlyList<int> LatticeVertices)
{
    /// <summary>Mean seconds of one mean-field iteration (0 when no iteration ran).</summary>
    public double SecondsPerIteration => Iterations > 0 ? InferenceSeconds / Iterations : 0;
}
