using BenchmarkDotNet.Attributes;
using WeakSeg.Refinement;

namespace WeakSeg.Bench;

/// <summary>
/// Permutohedral lattice on a 500×375 synthetic image (PSA kernels): building each lattice, and one 21-channel filter
/// (splat, blur, slice) as a mean-field iteration does per kernel. Run: dotnet run -c Release --project bench/WeakSeg.Bench -- --filter '*Lattice*'
/// </summary>
[MemoryDiagnoser]
public class PermutohedralLatticeBenchmarks
{
    const int Width = 500, Height = 375, Labels = 21;
    float[] _gaussianFeatures = [], _bilateralFeatures = [], _values = [], _output = [];
    PermutohedralLattice _gaussian = null!, _bilateral = null!;
    LatticeWorkspace _gaussianWorkspace = null!, _bilateralWorkspace = null!;

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var (rgb, probabilities) = DenseCrfBenchmark.SyntheticInput(Width, Height, Labels, 1);
        _gaussianFeatures = DenseCrf.GaussianFeatures(Width, Height, 3f);
        _bilateralFeatures = DenseCrf.BilateralFeatures(rgb, Width, Height, 80f, 13f);
        int n = Width * Height;
        _values = new float[n * Labels];
        for (int c = 0; c < Labels; c++)
            for (int i = 0; i < n; i++) _values[i * Labels + c] = probabilities[c * n + i];
        _output = new float[_values.Length];
        _gaussian = PermutohedralLattice.Build(_gaussianFeatures, n, 2, Threads);
        _bilateral = PermutohedralLattice.Build(_bilateralFeatures, n, 5, Threads);
        _gaussianWorkspace = _gaussian.CreateWorkspace(Labels);
        _bilateralWorkspace = _bilateral.CreateWorkspace(Labels);
    }

    [Benchmark]
    public int BuildGaussian() => PermutohedralLattice.Build(_gaussianFeatures, Width * Height, 2, Threads).VertexCount;

    [Benchmark]
    public int BuildBilateral() => PermutohedralLattice.Build(_bilateralFeatures, Width * Height, 5, Threads).VertexCount;

    [Benchmark]
    public void FilterGaussian21() => _gaussian.Filter(_values, _output, Labels, _gaussianWorkspace);

    [Benchmark]
    public void FilterBilateral21() => _bilateral.Filter(_values, _output, Labels, _bilateralWorkspace);
}
