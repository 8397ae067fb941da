"""rsgt_fast.torch: tensors in, the numpy engine's numbers out, on the tensor's device."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rsgt_fast  # noqa: E402
import rsgt_fast.torch as rtorch  # noqa: E402

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


def batch(dtype, seed=0, shape=(3, 9, 8)):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).to(torch.bool)
    if dtype.is_floating_point:
        return (torch.randn(shape, generator=g, dtype=torch.float64) * 300 + 40).to(dtype)
    return torch.randint(0, 200 if dtype == torch.uint8 else 4000, shape, generator=g).to(dtype)


@pytest.mark.parametrize("out_dtype", [torch.float32, torch.float16, torch.float64, "float32"])
@pytest.mark.parametrize("dtype", [torch.int16, torch.uint8, torch.int32, torch.bool,
                                   torch.float16, torch.float32, torch.float64])
def test_cpu_tensors_equal_the_numpy_engine(dtype, out_dtype):
    x = batch(dtype)
    before = x.clone()
    result = rtorch.transform_batch(x, rng=4, dtype=out_dtype)
    name = out_dtype if isinstance(out_dtype, str) else str(out_dtype).split(".")[1]
    expected = rsgt_fast.transform_batch(x.numpy(), rng=4, dtype=name)
    assert isinstance(result, torch.Tensor) and result.device.type == "cpu"
    np.testing.assert_array_equal(result.numpy(), expected)
    assert torch.equal(x, before)


def test_ranges_keys_curves_and_out():
    x = batch(torch.int16, seed=1)
    options = dict(rng=7, keys=[5, 3, 9], min_max_val=(100, 3000))
    result, curves = rtorch.transform_batch(x, return_curves=True, **options)
    expected, expected_curves = rsgt_fast.transform_batch(x.numpy(), return_curves=True,
                                                          **options)
    np.testing.assert_array_equal(result.numpy(), expected)
    assert curves == expected_curves
    replayed = rtorch.transform_batch(x[1:, 2:], curves=curves[1:])
    np.testing.assert_array_equal(replayed.numpy(), expected[1:, 2:])
    out = torch.empty(x.shape, dtype=torch.float64)
    assert rtorch.transform_batch(x, out=out, dtype=torch.float64, **options) is out
    np.testing.assert_array_equal(
        out.numpy(), rsgt_fast.transform_batch(x.numpy(), dtype="float64", **options))


def test_non_contiguous_and_grad_tensors():
    base = batch(torch.float32, seed=2, shape=(8, 9, 3)).requires_grad_(True)
    x = base.transpose(0, 2)  # (3, 9, 8), not contiguous
    result = rtorch.transform_batch(x, rng=1)
    np.testing.assert_array_equal(result.numpy(),
                                  rsgt_fast.transform_batch(x.detach().numpy(), rng=1))
    out = torch.empty((8, 9, 3)).transpose(0, 2)
    assert rtorch.transform_batch(x, rng=1, out=out) is out
    np.testing.assert_array_equal(out.numpy(), result.numpy())


@pytest.mark.parametrize("call, error, match", [
    (lambda x: rtorch.transform_batch(x.numpy()), TypeError, "torch.Tensor"),
    (lambda x: rtorch.transform_batch(x.to(torch.bfloat16), dtype=torch.bfloat16,
                                      out=torch.empty(x.shape)), ValueError, "bfloat16"),
    (lambda x: rtorch.transform_batch(x, dtype=torch.int16), ValueError, "dtype"),
    (lambda x: rtorch.transform_batch(x, dtype=torch.int16), ValueError, "dtype"),
    (lambda x: rtorch.transform_batch(x, out=torch.empty(2, 2)), ValueError, "shape"),
    (lambda x: rtorch.transform_batch(x, out=torch.empty(x.shape, dtype=torch.float64)),
     ValueError, "dtype"),
    (lambda x: rtorch.transform_batch(torch.empty(3, 4, device="meta")), ValueError, "meta"),
    (lambda x: rtorch.transform_batch(x, n_sinusoids=0), ValueError, "n_sinusoids"),
])
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call(batch(torch.float32))


@CUDA
@pytest.mark.parametrize("dtype", [torch.int16, torch.float16, torch.float32])
def test_cuda_tensors_stay_on_their_device(dtype):
    x = batch(dtype).cuda()
    result = rtorch.transform_batch(x, rng=3)
    assert result.device == x.device
    np.testing.assert_allclose(result.cpu().numpy(),
                               rsgt_fast.transform_batch(x.cpu().numpy(), rng=3), atol=1e-6)


def test_keys_may_be_an_integer_tensor_and_masks_tensors():
    x = torch.randint(-1000, 3000, (3, 6, 6), dtype=torch.int16)
    expected = rsgt_fast.transform_batch(x.numpy(), rng=4, keys=[5, 6, 7])
    out = rsgt_fast.torch.transform_batch(x, rng=4, keys=torch.tensor([5, 6, 7]))
    np.testing.assert_array_equal(out.numpy(), expected)
    with pytest.raises(TypeError, match="keys must hold integers"):
        rsgt_fast.torch.transform_batch(x, rng=4, keys=torch.tensor([0.5, 1.0, 2.0]))
    mask = x > 0
    masked = rsgt_fast.torch.transform_batch(x, rng=4, mask=mask, fill=-1.0)
    np.testing.assert_array_equal(
        masked.numpy(), rsgt_fast.transform_batch(x.numpy(), rng=4, mask=mask.numpy(), fill=-1.0))


@pytest.mark.parametrize("dtype", [torch.int16, torch.bool, torch.float16, torch.float32,
                                   torch.float64, torch.bfloat16])
def test_dtype_none_is_the_input_float_dtype(dtype):
    x = batch(dtype)
    out = rtorch.transform_batch(x, rng=2, dtype=None)
    expected = dtype if dtype.is_floating_point else torch.float32
    assert out.dtype == expected
    source = x.float() if dtype == torch.bfloat16 else x
    reference = rsgt_fast.transform_batch(source.numpy(), rng=2,
                                          dtype=None if dtype != torch.bfloat16 else "float32")
    assert torch.equal(out, torch.from_numpy(reference).to(expected))


def test_bfloat16_is_transformed_as_its_exact_float32():
    x = batch(torch.bfloat16)
    before = x.clone()
    as_float = rtorch.transform_batch(x, rng=5, keys=[3, 4, 5])
    assert as_float.dtype == torch.float32
    assert torch.equal(as_float, rtorch.transform_batch(x.float(), rng=5, keys=[3, 4, 5]))
    out = torch.empty(x.shape, dtype=torch.bfloat16)
    rounded, curves = rtorch.transform_batch(x, rng=5, keys=[3, 4, 5], dtype=torch.bfloat16,
                                             out=out, return_curves=True)
    assert rounded is out and torch.equal(out, as_float.to(torch.bfloat16))
    assert torch.equal(rtorch.transform_batch(x, curves=curves), as_float)
    assert torch.equal(x, before)
